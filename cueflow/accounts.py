"""Accounts: registration and API-key authentication."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

import cueflow.ids as ids
from cueflow.errors import Conflict, CueflowError, NotFound, Unauthorized
from cueflow.schemas import RegisterRequest
from cueflow.store import Duplicate

if TYPE_CHECKING:
    from cueflow.services import Services


ROTATED_KEY_SECONDS = 86_400
"""How long a replaced API key answers 401 ``key_rotated`` before it is just unknown."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. Every engine call is scoped to ``user_id``."""

    user_id: str
    email: str
    plan: str = "free"


async def register(services: Services, request: RegisterRequest) -> dict[str, str]:
    """Create a user; the only time the API key is ever returned in full."""
    if not services.settings.allow_register:
        raise NotFound("Not found", code="not_found")
    email = str(request.email)
    key = ids.new_api_key()
    await _insert_user(services, email, key)
    return {"api_key": key, "email": email}


async def account(services: Services, email: str) -> Principal:
    """The user registered with ``email``, created first if there is none (a 422
    ``validation_error`` for an invalid address). For code embedding the engine: no API key is
    returned or logged, and ``ALLOW_REGISTER`` does not apply. A user created here gets a key
    nobody knows; ``register`` makes one whose key REST clients use."""
    try:
        email = str(RegisterRequest(email=email).email)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise CueflowError(f"email: {message}", code="validation_error", status=422) from exc
    for _ in range(2):
        async with services.store.tx() as tx:
            user = await tx.user_by_email(email)
        if user is not None:
            return Principal(user_id=user["id"], email=user["email"], plan=user["plan"])
        try:
            await _insert_user(services, email, ids.new_api_key())
        except Conflict:
            continue  # created concurrently: read it back
    raise Conflict("Email already registered", code="duplicate_email")


async def _insert_user(services: Services, email: str, key: str) -> None:
    """Insert a user owning ``key`` (stored hashed); 409 ``duplicate_email`` if taken."""
    now = services.clock.now()
    base_slug = ids.slug_from_email(email)
    for attempt in range(5):
        slug = base_slug if attempt == 0 else f"{base_slug}-{ids.new_cue_id()[4:8]}"
        values = {
            "id": ids.new_user_id(),
            "email": email,
            "api_key_hash": ids.hash_api_key(key),
            "api_key_prefix": key[:12],
            "plan": "free",
            "slug": slug,
            "webhook_secret": ids.new_webhook_secret(),
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with services.store.tx() as tx:
                await tx.insert_user(values)
        except Duplicate as dup:
            if dup.constraint == "slug":
                continue
            raise Conflict("Email already registered", code="duplicate_email") from dup
        return
    raise Conflict("Could not allocate a unique slug", code="duplicate_email")


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
        async with self._services.store.tx() as tx:
            user = await tx.user_by_key_hash(digest)
            rotated = user is None and await tx.key_rotated_since(
                digest, self._services.seconds_ago(ROTATED_KEY_SECONDS)
            )
        if rotated:
            raise Unauthorized(
                "This API key has been rotated. Use your new key.", code="key_rotated"
            )
        if user is None or not hmac.compare_digest(user["api_key_hash"], digest):
            raise Unauthorized("Invalid API key")
        principal = Principal(user_id=user["id"], email=user["email"], plan=user["plan"])
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop every remembered key (after a key rotation)."""
        self._cache.clear()
