"""Wire rendering: the contract's JSON shapes (built by :mod:`cueflow.wire`, re-exported
here), serialised with orjson.

Model datetimes render as ``...Z`` (as Pydantic does in CueAPI); the hand-built fields the
contract lists render with ``isoformat()`` (``+00:00``) and are formatted where they are built.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from cueflow.wire import (
    alert_json,
    claimable_json,
    claimed_json,
    cue_json,
    execution_json,
    payload_of,
    run_json,
)

__all__ = [
    "JSONResponse",
    "alert_json",
    "claimable_json",
    "claimed_json",
    "cue_json",
    "execution_json",
    "json_bytes",
    "json_response",
    "payload_of",
    "run_json",
]

_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


class JSONResponse(Response):
    """A response whose body is rendered by orjson (``Z`` datetimes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``."""
        return json_bytes(content)


def json_bytes(content: Any) -> bytes:
    """``content`` as the body of a JSON answer (what :class:`JSONResponse` sends)."""
    return orjson.dumps(content, option=_OPTS)


def json_response(content: Any, status_code: int = 200) -> JSONResponse:
    """A JSON response."""
    return JSONResponse(content, status_code=status_code)
