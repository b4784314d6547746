""":func:`transient_delay`: which model errors are worth a later retry.

A transient model error (rate limit, a 5xx, a connection error) gives the execution back to be
retried after the provider's ``Retry-After`` or the cue's retry backoff; any other model error
is a failure (see :mod:`cueflow.agents.loop`). Providers are recognised by class name and
status code, so no provider package is imported.
"""

from __future__ import annotations

_TRANSIENT = {
    "APIConnectionError",
    "APITimeoutError",
    "RateLimitError",
    "InternalServerError",
    "ModelAPIError",
    "ModelConnectionError",
    "ModelRateLimitError",
    "ModelTimeoutError",
}
"""Provider errors (by class name, so no provider package is imported) worth a later retry."""


def transient_delay(exc: BaseException) -> tuple[bool, float | None]:
    """Whether a model error is transient (a rate limit, a 5xx, a connection failure), and the
    ``Retry-After`` the provider asked for, in seconds, if any."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    transient = bool(names & _TRANSIENT) or (
        isinstance(status, int) and (status in (408, 429) or status >= 500)
    )
    if not transient:
        return False, None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for key, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is not None:
            try:
                return True, max(0.0, float(value) / scale)
            except ValueError:
                continue  # an HTTP date: leave it to the cue's backoff
    return True, None
