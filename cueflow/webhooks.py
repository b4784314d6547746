"""Verifying a webhook delivery on the receiving side: ``X-CueAPI-Signature`` and
``X-CueAPI-Timestamp``, as cueflow (and CueAPI) sign them.

A delivery is signed ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` over the exact
body bytes sent, keyed by the whole secret string (``whsec_...``). During a secret rotation's
overlap window (``CUEFLOW_WEBHOOK_SECRET_OVERLAP_SECONDS``, or the rotation's own
``overlap_seconds``) the header carries two comma-separated values, signed with the new and the
previous secret; :func:`verify` accepts a delivery when any value matches any of the secrets it
is given, so a receiver can hold the old and the new secret while it switches over.

Usage::

    import cueflow.webhooks

    try:
        cueflow.webhooks.verify(raw_body, request.headers, secret)
    except cueflow.webhooks.SignatureError as exc:
        return 401, exc.envelope()

:func:`verify_request` does the same for a Starlette (or FastAPI) request and
:func:`fastapi_verifier` makes a FastAPI dependency of it. Neither Starlette nor FastAPI is
imported until one of those is called, so ``import cueflow.webhooks`` stays light.

A ``GET`` callback sends no body (the signature covers the body it would have had), so only
``POST``, ``PUT`` and ``PATCH`` deliveries can be verified from the request alone.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

SIGNATURE_HEADER = "X-CueAPI-Signature"
TIMESTAMP_HEADER = "X-CueAPI-Timestamp"
DEFAULT_TOLERANCE = 300
"""Seconds a delivery's timestamp may be off from the receiver's clock (as the official SDK)."""
SCHEME = "v1="


class SignatureError(ValueError):
    """A delivery that does not verify. ``reason`` says why, as a code:

    * ``missing_signature`` / ``missing_timestamp``: the header is absent or empty;
    * ``invalid_timestamp``: the timestamp is not whole Unix seconds;
    * ``stale_timestamp``: it is further than the tolerance from now (a replay, or a clock off);
    * ``invalid_signature``: no ``v1=`` value matches any of the secrets (a changed body, or
      another secret).
    """

    status = 401

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def envelope(self) -> dict[str, Any]:
        """The contract's error body: ``{"error": {"code", "message", "status"}}``."""
        return {"error": {"code": self.reason, "message": self.message, "status": self.status}}


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | datetime | None = None,
) -> None:
    """Check a delivery, or raise :class:`SignatureError`.

    ``body`` is the raw request body, exactly as received (not re-serialised JSON); ``headers``
    any mapping of the request's headers (names in any case); ``secret`` the account's webhook
    secret, or several (the old and the new one while a rotation is under way). The timestamp
    must be within ``tolerance`` seconds of ``now`` (Unix seconds or an aware datetime; default
    the current time), either way.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise ValueError("verify needs a webhook secret (or a non-empty list of them)")
    if tolerance < 0:
        raise ValueError("tolerance must be 0 or more seconds")
    signature = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not signature:
        raise SignatureError("missing_signature", f"The {SIGNATURE_HEADER} header is missing")
    if not timestamp:
        raise SignatureError("missing_timestamp", f"The {TIMESTAMP_HEADER} header is missing")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(
            "invalid_timestamp", f"The {TIMESTAMP_HEADER} header is not whole Unix seconds"
        )
    current = _seconds(now)
    if abs(current - int(timestamp)) > tolerance:
        raise SignatureError(
            "stale_timestamp",
            f"The delivery's timestamp is more than {tolerance} seconds from now",
        )
    values = [value.strip() for value in signature.split(",")]
    offered = [value[len(SCHEME) :] for value in values if value.startswith(SCHEME)]
    signed = timestamp.encode() + b"." + bytes(body)
    for key in secrets:
        expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
        # every comparison is made, so the time taken does not tell which value was close
        if sum(hmac.compare_digest(expected, value) for value in offered):
            return
    raise SignatureError("invalid_signature", "The delivery's signature does not match")


def _header(headers: Mapping[str, str], name: str) -> str:
    """``name`` from ``headers``, whatever the case of its keys."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return (value or "").strip()


def _seconds(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


async def verify_request(
    request: Request,
    secret: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bytes:
    """Verify a Starlette (or FastAPI) request; its raw body, or :class:`SignatureError`.
    The body stays readable afterwards (Starlette keeps it)."""
    body = await request.body()
    verify(body, request.headers, secret, tolerance)
    return body


def rejection(error: SignatureError) -> Response:
    """The 401 answer to a delivery that did not verify, with the contract's error body (a
    Starlette ``JSONResponse``)."""
    from starlette.responses import JSONResponse

    return JSONResponse(error.envelope(), status_code=error.status)


def fastapi_verifier(
    secret: str | Sequence[str], *, tolerance: int = DEFAULT_TOLERANCE
) -> Callable[..., Awaitable[bytes]]:
    """A FastAPI dependency that verifies the delivery and gives the raw body::

        verified = cueflow.webhooks.fastapi_verifier(SECRET)

        @app.post("/hook")
        async def hook(body: Annotated[bytes, Depends(verified)]) -> dict[str, bool]:
            delivery = json.loads(body)
            ...

    A delivery that does not verify is answered 401 (an ``HTTPException`` whose ``detail`` is
    the contract's error object). For the contract's exact body, ``{"error": {...}}``, give
    the app :func:`fastapi_exception_handlers` (``FastAPI(exception_handlers=...)``).
    """
    from fastapi import Request

    rejected = _rejected_type()

    async def verified_body(request: Request) -> bytes:
        try:
            return await verify_request(request, secret, tolerance=tolerance)
        except SignatureError as error:
            raise rejected(error.status, error.envelope()["error"]) from error

    # FastAPI reads the parameter's type from here (this module's annotations are strings)
    verified_body.__annotations__ = {"request": Request, "return": bytes}
    return verified_body


def fastapi_exception_handlers() -> dict[Any, Callable[..., Any]]:
    """Exception handlers for a FastAPI app (``FastAPI(exception_handlers=...)``) that answer a
    delivery :func:`fastapi_verifier` rejected with the contract's error body,
    ``{"error": {"code", "message", "status"}}``; other errors keep FastAPI's handling."""
    from starlette.responses import JSONResponse

    async def handle(request: Any, exc: Any) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    return {_rejected_type(): handle}


@functools.cache
def _rejected_type() -> type[Exception]:
    """The ``HTTPException`` a :func:`fastapi_verifier` dependency raises (made on first use,
    so that FastAPI is imported only by those who use it)."""
    from fastapi import HTTPException

    class WebhookRejected(HTTPException):
        """A delivery that did not verify (401)."""

    return WebhookRejected
