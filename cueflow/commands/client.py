"""The command line's REST client: :class:`cueflow.http_client.ApiClient` run to completion on
an event loop of its own, one call at a time, for commands that are plain functions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cueflow.http_client import (
    DEFAULT_API_URL,
    ApiError,
    BadServerUrl,
    Unreachable,
    check_server_url,
)
from cueflow.http_client import ApiClient as AsyncApiClient

__all__ = [
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiError",
    "BadServerUrl",
    "Unreachable",
    "check_server_url",
]


class ApiClient:
    """A blocking :class:`cueflow.http_client.ApiClient` (same arguments, same errors)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api = AsyncApiClient(base_url, api_key, timeout=timeout, transport=transport)
        self.base_url = self._api.base_url
        self._runner = asyncio.Runner()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the event loop."""
        self._runner.run(self._api.aclose())
        self._runner.close()

    def get(self, path: str, **params: Any) -> Any:
        """``GET path?params``."""
        return self._runner.run(self._api.get(path, **params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """``POST path`` with a JSON ``body``."""
        return self._runner.run(self._api.post(path, body, **kwargs))

    def patch(self, path: str, body: Any) -> Any:
        """``PATCH path`` with a JSON ``body``."""
        return self._runner.run(self._api.patch(path, body))

    def delete(self, path: str) -> Any:
        """``DELETE path``."""
        return self._runner.run(self._api.delete(path))
