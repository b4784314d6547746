"""The command line's REST client: :class:`cueflow.client.Client`, the blocking typed client
(one method per operation, the contract's errors as exceptions, 429/503 retried after their
``Retry-After``). Commands print what the server answered (``answer.wire()``), key for key."""

from __future__ import annotations

from cueflow.client import (
    DEFAULT_API_URL,
    ApiError,
    BadServerUrl,
    Unreachable,
    check_server_url,
)
from cueflow.client import Client as ApiClient

__all__ = [
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiError",
    "BadServerUrl",
    "Unreachable",
    "check_server_url",
]
