"""Authentication: who is calling. Bearer API keys are checked against their stored SHA-256
(good ones remembered briefly), and a replaced key answers 401 ``key_rotated`` for a day."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cueflow.ids as ids
from cueflow.errors import Unauthorized

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
        if user is None or not hmac.compare_digest(user.api_key_hash, digest):
            raise Unauthorized("Invalid API key")
        principal = Principal(user_id=user.id, email=user.email, plan=user.plan)
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + ttl, principal)
        return principal

    def forget(self) -> None:
        """Drop every remembered key (after a key rotation)."""
        self._cache.clear()
