"""Domain errors.

Every error a caller can cause is a :class:`CueflowError` carrying the wire ``code``, a human
``message`` and the HTTP ``status`` the REST layer answers with. The engine raises them; the API
layer only renders them into the contract's ``{"error": {...}}`` envelope.
"""

from __future__ import annotations


class CueflowError(Exception):
    """An error the caller caused, with its contract code and HTTP status."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class CueValidationError(CueflowError):
    """A whole-cue rule failed; rendered like a Pydantic model error (422, loc ``body``)."""

    code = "validation_error"
    status = 422


class InvalidSchedule(CueflowError):
    """A schedule that cannot be computed: bad type, bad cron, missing or past ``at``."""

    code = "invalid_schedule"
    status = 400


class InvalidTimezone(CueflowError):
    """A timezone name that is not an IANA zone."""

    code = "invalid_timezone"
    status = 422


class NotFound(CueflowError):
    """A resource that does not exist or belongs to another user."""

    status = 404


class Conflict(CueflowError):
    """A request that conflicts with the current state (duplicate, claim race, write-once)."""

    status = 409


class Forbidden(CueflowError):
    """A request the caller may not make (plan limit, lease owned by another worker)."""

    status = 403


class Unauthorized(CueflowError):
    """Missing or invalid credentials."""

    code = "invalid_api_key"
    status = 401


class PluginError(RuntimeError):
    """A plugin failed to load or registered something invalid; raised at start-up."""


class DatabaseUnavailable(CueflowError):
    """The database cannot do the work now (unreachable, not answering in time, restarting,
    full); the caller should retry after :attr:`retry_after` seconds. Never the caller's
    fault: answered 503 ``database_unavailable`` with a ``Retry-After`` header."""

    code = "database_unavailable"
    status = 503
    retry_after = 5
    """Seconds a client should wait before trying again."""


class DatabaseBusy(DatabaseUnavailable):
    """The database stayed locked by another process (SQLite's write lock) for longer than
    the store waits; nothing was written, and the request may be retried (503
    ``database_unavailable`` with ``Retry-After``, like any unavailable database)."""

    retry_after = 1
