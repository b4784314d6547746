"""Exception handlers: every failure answers with the contract's ``{"error": {...}}`` envelope."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from cueflow.api.render import JSONResponse, json_response
from cueflow.errors import CueflowError, DatabaseUnavailable
from cueflow.faults import database_fault

log = logging.getLogger(__name__)


def envelope(code: str, message: str, status: int, **extra: Any) -> dict[str, Any]:
    """The contract's error body."""
    return {"error": {"code": code, "message": message, "status": status, **extra}}


class FieldError(BaseModel):
    """One failing input of a ``validation_error``."""

    field: str
    message: str


class ErrorDetail(BaseModel):
    """The inside of the envelope; ``details`` only on ``validation_error``."""

    code: str
    message: str
    status: int
    details: list[FieldError] | None = None


class ErrorEnvelope(BaseModel):
    """``{"error": {...}}``: the body of every error answer (the OpenAPI document's 4XX)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "The contract's error envelope"},
    503: {
        "model": ErrorEnvelope,
        "description": "database_unavailable: the database cannot do the work now; retry after "
        "the Retry-After header's seconds",
    },
}
"""The error answers every route may give, for the OpenAPI document (a 5xx other than 503
``database_unavailable`` is a bug)."""


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _unparsed_body(error: Any) -> bool:
    """A body FastAPI did not decode (no JSON content type) that is not JSON either."""
    raw = error.get("input")
    if tuple(error.get("loc", ())) != ("body",) or not isinstance(raw, bytes | str):
        return False
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    return False


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" or _unparsed_body(error) for error in errors):
        return json_response(envelope("invalid_json", "Request body is not valid JSON", 400), 400)
    details = [
        {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in errors
    ]
    first = details[0] if details else {"field": "body", "message": "Invalid request"}
    message = f"{first['field']}: {first['message']}"
    return json_response(envelope("validation_error", message, 422, details=details), 422)


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CueflowError)
    return domain_response(exc, request.method, request.url.path)


def domain_response(exc: CueflowError, method: str, path: str) -> JSONResponse:
    """The answer to a domain error raised while serving ``method path``: its envelope (with
    ``details`` for a ``validation_error``), and ``Retry-After`` when the database is down."""
    body = envelope(exc.code, exc.message, exc.status)
    if exc.code == "validation_error":
        field, _, message = exc.message.partition(": ")
        body["error"]["details"] = [{"field": field, "message": message}]
    response = json_response(body, exc.status)
    if isinstance(exc, DatabaseUnavailable):
        log.warning("%s %s: %s", method, path, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's answer to a body json.loads cannot take (too deep, not UTF-8)
        return json_response(envelope("invalid_json", "Request body is not valid JSON", 400), 400)
    response = json_response(
        envelope("http_error", str(exc.detail), exc.status_code), exc.status_code
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reason = database_fault(exc)
    if reason is not None:  # raised outside a store's unit of work (a third-party store)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, reason)
        return _domain(request, DatabaseUnavailable(f"Database unavailable: {reason}"))
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return json_response(envelope("internal_error", "An internal error occurred", 500), 500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(CueflowError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
