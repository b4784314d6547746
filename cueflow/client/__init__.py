"""cueflow's own client of the REST API: :class:`Client` (blocking) and :class:`AsyncClient`.

Both cover every operation of the server's OpenAPI document, as ``client.<resource>.<action>``
named after its operation id (``client.cues.create``, ``client.executions.claim_next``), with
typed answers (:mod:`cueflow.client.models`, generated from the document), the contract's errors
as exceptions (:mod:`cueflow.client.errors`), retries of 429/503 honouring ``Retry-After``
(:class:`Retries`) and ``iterate`` helpers walking every page of a list::

    from cueflow import Client

    with Client("http://127.0.0.1:8000", api_key) as client:
        for cue in client.cues.iterate(status="active"):
            print(cue.name)
"""

from cueflow.client import models
from cueflow.client._async_client import AsyncClient
from cueflow.client._shapes import DEFAULT_API_URL, BadServerUrl, Retries, check_server_url
from cueflow.client._sync_client import Client
from cueflow.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    Unreachable,
    ValidationFailed,
)

__all__ = [
    "DEFAULT_API_URL",
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "BadServerUrl",
    "Client",
    "Conflict",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Retries",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unreachable",
    "ValidationFailed",
    "check_server_url",
    "models",
]
