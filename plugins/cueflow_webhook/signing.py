"""The webhook request: CueAPI's body bytes and its Stripe-style signature (contract §5.1-5.2).

The body is ``json.dumps(document, sort_keys=True)`` with Python's default separators
(``", "`` and ``": "``) and ASCII escaping — exactly the bytes the official SDK's
``verify_webhook`` recomputes from the parsed body — and those very bytes are sent. The signature
is ``v1=`` + hex HMAC-SHA256 keyed by the whole secret string over ``"<timestamp>." + body``.

During the overlap window of a secret rotation the header holds two comma-separated values,
``v1=<new>,v1=<previous>`` (as Stripe-style schemes do): a receiver checks each value and
accepts the delivery if one matches its secret. Outside a window it holds exactly one value,
which CueAPI's SDK verifier compares with the whole header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cueflow.transport import Callback, Delivery

USER_AGENT = "CueAPI/1.0"
SIGNATURE_HEADER = "X-CueAPI-Signature"
TIMESTAMP_HEADER = "X-CueAPI-Timestamp"
PROTECTED_HEADERS = frozenset({SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower()})
"""Headers a cue's custom ``callback.headers`` cannot replace (CueAPI lets them)."""


def body_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed for ``document``."""
    return json.dumps(document, sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def signed_headers(
    secret: str, timestamp: str, body: bytes, previous: str | None = None
) -> dict[str, str]:
    """``Content-Type``, the signature and timestamp headers (the signature with ``secret``,
    then with ``previous`` when one is given)."""
    signatures = [signature(key, timestamp, body) for key in (secret, previous) if key]
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: ",".join(signatures),
        TIMESTAMP_HEADER: timestamp,
    }


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    """The JSON body of a delivery."""
    return {
        "execution_id": delivery.execution_id,
        "cue_id": delivery.cue_id,
        "name": delivery.cue_name,
        "scheduled_for": delivery.scheduled_for.isoformat(),
        "attempt": delivery.attempt,
        "payload": delivery.payload,
    }


def delivery_headers(
    delivery: Delivery, callback: Callback, timestamp: str, body: bytes
) -> list[tuple[str, str]]:
    """The headers of a delivery to ``callback``, in CueAPI's order, then the cue's custom
    headers. A custom header replaces a built-in one of the same name (case-insensitively),
    except the signature and timestamp, which stay cueflow's so that a delivery always
    verifies."""
    headers = {
        **signed_headers(
            callback.signing_secret, timestamp, body, callback.previous_signing_secret
        ),
        "X-CueAPI-Cue-Id": delivery.cue_id,
        "X-CueAPI-Execution-Id": delivery.execution_id,
        "X-CueAPI-Scheduled-For": delivery.scheduled_for.isoformat(),
        "X-CueAPI-Attempt": str(delivery.attempt),
        "User-Agent": USER_AGENT,
    }
    merged = {name.lower(): (name, value) for name, value in headers.items()}
    for name, value in callback.headers.items():
        if name.lower() not in PROTECTED_HEADERS:
            merged[name.lower()] = (name, str(value))
    return list(merged.values())
