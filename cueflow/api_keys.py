"""Scoped API keys: an account's keys besides its own, each with a scope
(:mod:`cueflow.scopes`), created and revoked by a full key.

* ``create_key``: a new ``cue_sk_`` key with a scope and an optional name; the answer is the
  only time the secret is shown (only its SHA-256 is stored, like the account's own key). At
  most :data:`MAX_KEYS` live keys per account (409 ``too_many_keys``).
* ``list_keys``: the live keys (id, name, scope, prefix, created, last used) and the account
  key's prefix; never a secret.
* ``revoke_key``: the key answers 401 ``key_revoked`` from now on (other nodes may still accept
  it for ``CUEFLOW_AUTH_CACHE_SECONDS``, 5 s by default, from their in-process cache); an
  unknown or already revoked id is 404 ``key_not_found``.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

import cueflow.ids as ids
from cueflow.authentication import Authenticator, Principal
from cueflow.errors import Conflict, NotFound
from cueflow.records import ApiKey, ApiKeyList
from cueflow.schema_examples import with_example
from cueflow.scopes import Scope

if TYPE_CHECKING:
    from cueflow.services import Services

MAX_KEYS = 100
"""The most live scoped keys an account may hold."""

_ID_ALPHABET = string.ascii_lowercase + string.digits


class ApiKeyCreate(BaseModel):
    """``POST /v1/auth/keys``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=with_example)

    scope: Scope
    name: str | None = Field(None, min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or not value.isprintable()):
            raise ValueError("name must be printable text")
        return value


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as the API shows it (never its secret or hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope.value,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
    }


def _new_key_id() -> str:
    return "key_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


async def create_key(services: Services, user: Principal, request: ApiKeyCreate) -> dict[str, Any]:
    """Create a key; its body with ``api_key``, the secret, shown this once."""
    secret = ids.new_api_key()
    key = ApiKey(
        id=_new_key_id(),
        user_id=user.user_id,
        name=request.name,
        scope=request.scope,
        key_hash=ids.hash_api_key(secret),
        prefix=secret[:12],
        created_at=services.clock.now(),
        last_used_at=None,
        revoked_at=None,
    )
    async with services.store.tx() as tx:
        if await tx.lock_user(user.user_id) is None:
            raise NotFound("User not found", code="user_not_found")
        if await tx.count_api_keys(user.user_id) >= MAX_KEYS:
            raise Conflict(
                f"An account may hold at most {MAX_KEYS} keys: revoke one first.",
                code="too_many_keys",
            )
        await tx.insert_api_key(
            {
                "id": key.id,
                "user_id": key.user_id,
                "name": key.name,
                "scope": key.scope.value,
                "key_hash": key.key_hash,
                "prefix": key.prefix,
                "created_at": key.created_at,
            }
        )
    return {**key_json(key), "api_key": secret}


async def list_keys(services: Services, user: Principal) -> ApiKeyList:
    """The account key's prefix and the live scoped keys, oldest first."""
    async with services.store.tx() as tx:
        account = await tx.get_user(user.user_id)
        if account is None:
            raise NotFound("User not found", code="user_not_found")
        keys = await tx.list_api_keys(user.user_id)
    return ApiKeyList(account_key_prefix=account.api_key_prefix, keys=keys)


def key_list_json(listed: ApiKeyList) -> dict[str, Any]:
    """``GET /v1/auth/keys``'s body: the account key's prefix and scope, and each key."""
    return {
        "account_key": {"prefix": listed.account_key_prefix, "scope": Scope.FULL.value},
        "keys": [key_json(key) for key in listed.keys],
    }


async def revoke_key(services: Services, auth: Authenticator, user: Principal, key_id: str) -> None:
    """Revoke the caller's key ``key_id``; 404 ``key_not_found`` if it has no such live key."""
    async with services.store.tx() as tx:
        revoked = await tx.revoke_api_key(user.user_id, key_id, services.clock.now())
    if revoked is None:
        raise NotFound("API key not found", code="key_not_found")
    auth.forget()
