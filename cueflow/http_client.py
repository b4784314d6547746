"""Where the REST client's errors were first imported from, kept so that
``except cueflow.http_client.ApiError`` still works: the client is :mod:`cueflow.client`, and
these names are its classes."""

from __future__ import annotations

from cueflow.client import DEFAULT_API_URL, BadServerUrl, check_server_url
from cueflow.client.errors import MESSAGE_LIMIT, ApiError, Unreachable, api_error

__all__ = [
    "DEFAULT_API_URL",
    "MESSAGE_LIMIT",
    "ApiError",
    "BadServerUrl",
    "Unreachable",
    "api_error",
    "check_server_url",
]
