"""Authentication: who is calling. Bearer API keys are checked against their stored SHA-256
(good ones remembered briefly), and a replaced key answers 401 ``key_rotated`` for a day.

A key is the account's own key (scope ``full``) or one of its scoped keys
(:mod:`cueflow.api_keys`); a revoked scoped key answers 401 ``key_revoked``. A scoped key's
``last_used_at`` is written at most once a minute, on a cache miss, so using a key costs no
write per request."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cueflow.ids as ids
from cueflow.errors import Unauthorized
from cueflow.scopes import Scope

if TYPE_CHECKING:
    from cueflow.services import Services


ROTATED_KEY_SECONDS = 86_400
"""How long a replaced API key answers 401 ``key_rotated`` before it is just unknown."""

LAST_USED_SECONDS = 60
"""A scoped key's ``last_used_at`` is brought up to date when it is older than this."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. Every engine call is scoped to ``user_id``."""

    user_id: str
    email: str
    plan: str = "free"
    scope: Scope = Scope.FULL
    """What the key may do (:mod:`cueflow.scopes`); the account's own key is ``full``."""
    key_id: str | None = None
    """The scoped key that authenticated (``None``: the account's own key)."""


class Authenticator:
    """Verifies bearer API keys, remembering good ones briefly so hot paths skip the store."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header value, or :class:`Unauthorized`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("Missing or invalid Authorization header")
        # Only HTTP's own blanks: a key padded with other (Unicode) whitespace is another key,
        # so it cannot authenticate as this one while the rate limiter counts it apart.
        key = authorization[len("Bearer ") :].strip(" \t")
        digest = ids.hash_api_key(key)
        cached = self._cache.get(digest)
        ttl = self._services.settings.auth_cache_seconds
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if not key.startswith("cue_sk_"):
            raise Unauthorized("Invalid API key")
        principal = await self._lookup(digest)
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + ttl, principal)
        return principal

    async def _lookup(self, digest: str) -> Principal:
        """The principal owning the key hashing to ``digest``, from the store."""
        services = self._services
        now = services.clock.now()
        async with services.store.tx() as tx:
            user = await tx.user_by_key_hash(digest)
            if user is not None and hmac.compare_digest(user.api_key_hash, digest):
                return Principal(user_id=user.id, email=user.email, plan=user.plan)
            key = await tx.api_key_by_hash(digest)
            if key is not None and key.revoked_at is None:
                owner = await tx.get_user(key.user_id)
                if owner is not None and hmac.compare_digest(key.key_hash, digest):
                    if key.last_used_at is None or key.last_used_at < services.seconds_ago(
                        LAST_USED_SECONDS
                    ):
                        await tx.touch_api_key(key.id, now)
                    return Principal(
                        user_id=owner.id,
                        email=owner.email,
                        plan=owner.plan,
                        scope=key.scope,
                        key_id=key.id,
                    )
            rotated = await tx.key_rotated_since(digest, services.seconds_ago(ROTATED_KEY_SECONDS))
        if key is not None and key.revoked_at is not None:
            raise Unauthorized("This API key has been revoked.", code="key_revoked")
        if rotated:
            raise Unauthorized(
                "This API key has been rotated. Use your new key.", code="key_rotated"
            )
        raise Unauthorized("Invalid API key")

    def forget(self) -> None:
        """Drop every remembered key (after a key rotation)."""
        self._cache.clear()
