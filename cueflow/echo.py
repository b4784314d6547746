"""The echo receiver: a built-in webhook target that keeps what it receives for a few minutes.

``POST /v1/echo/{token}`` (no authentication) stores a JSON body with the request's headers
under ``token``; ``GET /v1/echo/{token}`` (authenticated) reads it back. The ``cueapi`` CLI's
``quickstart`` points a webhook cue at it and polls until the delivery shows up. Messages live
in the database for :data:`ECHO_SECONDS`, so every node of a cluster sees them; expired ones are
removed whenever another is stored. ``Authorization``, ``Cookie`` and ``Proxy-Authorization``
headers are not kept, and NUL characters are removed from the body (PostgreSQL cannot hold
them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from cueflow.errors import CueflowError
from cueflow.jsonvalues import strip_nul

if TYPE_CHECKING:
    from cueflow.services import Services

ECHO_SECONDS = 300
MAX_ECHO_BYTES = 1_000_000
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 255
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def check_token(token: str) -> None:
    """400 ``invalid_token`` for a token shorter than 16 or longer than 255 characters."""
    if len(token) < MIN_TOKEN_CHARS:
        raise CueflowError("Token must be at least 16 characters", code="invalid_token")
    if len(token) > MAX_TOKEN_CHARS:
        raise CueflowError("Token must be at most 255 characters", code="invalid_token")


async def store_echo(
    services: Services, token: str, body: bytes, headers: Iterable[tuple[str, str]]
) -> dict[str, bool]:
    """Keep ``body`` (which must be JSON) and ``headers`` under ``token``."""
    check_token(token)
    if len(body) > MAX_ECHO_BYTES:
        raise CueflowError("Echo payload must be under 1MB", code="payload_too_large", status=413)
    try:
        payload = strip_nul(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise CueflowError("Request body is not valid JSON", code="invalid_json") from exc
    kept = {name.lower(): value for name, value in headers if name.lower() not in PRIVATE_HEADERS}
    now = services.clock.now()
    async with services.store.tx() as tx:
        await tx.forget_echoes(now)
        await tx.put_echo(
            {
                "token": token,
                "payload": payload,
                "headers": strip_nul(kept),
                "received_at": now,
                "expires_at": now + timedelta(seconds=ECHO_SECONDS),
            }
        )
    return {"stored": True}


async def read_echo(services: Services, token: str) -> dict[str, Any]:
    """``{"status": "waiting"}``, or ``delivered`` with the stored payload and headers."""
    async with services.store.tx() as tx:
        row = await tx.get_echo(token, services.clock.now())
    if row is None:
        return {"status": "waiting"}
    return {
        "status": "delivered",
        "payload": row.payload,
        "headers": row.headers,
        "received_at": row.received_at.isoformat(),
    }
