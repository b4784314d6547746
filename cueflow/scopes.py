"""What each kind of API key may do: the scopes, and the one table of which scopes may call each
operation of the REST API.

* ``full``: everything (the account's own key, and keys created with this scope). Only a full
  key creates or revokes keys and reads or rotates secrets.
* ``worker``: the worker protocol and nothing else: list claimable executions, claim (one,
  the next, a batch), heartbeat a lease, report outcomes (one or a batch), release a claim,
  register and list workers, and read one execution (the agent toolkit's ``get_execution``).
  That is everything CueAPI's ``cueapi-worker`` daemon and cueflow's own workers call.
* ``read``: every ``GET`` except the signing secrets (a secret is a credential, not data).

Operations are named ``"METHOD /path/{param}"`` as the REST router declares them. The REST
layer checks the route a request matched (``cueflow.api.deps``); the agents' in-process client
checks the route of the call it stands for, so an agent holding a worker key can do over MCP
exactly what it could over HTTP. A route missing from :data:`ROUTE_SCOPES` is refused to every
key but a full one (and ``tests/test_security_scopes.py`` fails until it is declared).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from cueflow.errors import Forbidden


class Scope(StrEnum):
    """What an API key may do."""

    FULL = "full"
    WORKER = "worker"
    READ = "read"


ANY_KEY: Final = frozenset(Scope)
"""Every key (or no key at all, for the routes of :data:`PUBLIC_ROUTES`)."""
WORKERS: Final = frozenset({Scope.FULL, Scope.WORKER})
READERS: Final = frozenset({Scope.FULL, Scope.READ})
FULL_ONLY: Final = frozenset({Scope.FULL})

PUBLIC_ROUTES: Final = frozenset(
    {
        "GET /openapi.json",
        "GET /docs",
        "GET /docs/oauth2-redirect",
        "GET /redoc",
        "GET /health",
        "GET /status",
        "GET /metrics",
        "GET /v1/info",
        "POST /v1/auth/register",
        "POST /v1/echo/{token}",
        "GET /ui",
        "GET /ui/",
        "GET /ui/{name:path}",
    }
)
"""Routes that take no key (probes, documentation, registration, the echo receiver, the
dashboard's static files): no scope applies."""

ROUTE_SCOPES: Final[dict[str, frozenset[Scope]]] = {
    # the worker protocol
    "GET /v1/executions/claimable": ANY_KEY,
    "POST /v1/executions/claims": WORKERS,
    "POST /v1/executions/claim": WORKERS,
    "POST /v1/executions/{execution_id}/claim": WORKERS,
    "POST /v1/executions/{execution_id}/heartbeat": WORKERS,
    "POST /v1/executions/{execution_id}/outcome": WORKERS,
    "POST /v1/executions/outcomes": WORKERS,
    "POST /v1/executions/{execution_id}/release": WORKERS,
    "GET /v1/executions/{execution_id}": ANY_KEY,
    "POST /v1/worker/heartbeat": WORKERS,
    "GET /v1/workers": ANY_KEY,
    "DELETE /v1/workers/{worker_id}": FULL_ONLY,
    # executions
    "GET /v1/executions": READERS,
    "GET /v1/stats/overview": READERS,
    "GET /v1/events/stream": READERS,
    "POST /v1/executions/{execution_id}/replay": FULL_ONLY,
    "POST /v1/executions/{execution_id}/verify": FULL_ONLY,
    "POST /v1/executions/{execution_id}/verification-pending": FULL_ONLY,
    "PATCH /v1/executions/{execution_id}/evidence": FULL_ONLY,
    # cues
    "POST /v1/cues": FULL_ONLY,
    "GET /v1/cues": READERS,
    "GET /v1/cues/{cue_id}": READERS,
    "PATCH /v1/cues/{cue_id}": FULL_ONLY,
    "DELETE /v1/cues/{cue_id}": FULL_ONLY,
    "POST /v1/cues/{cue_id}/fire": FULL_ONLY,
    "POST /v1/cues/{cue_id}/backfill": FULL_ONLY,
    # flows and their runs
    "POST /v1/flows": FULL_ONLY,
    "GET /v1/flows": READERS,
    "GET /v1/flows/{flow_id}": READERS,
    "PATCH /v1/flows/{flow_id}": FULL_ONLY,
    "DELETE /v1/flows/{flow_id}": FULL_ONLY,
    "POST /v1/flows/{flow_id}/runs": FULL_ONLY,
    "GET /v1/flow-runs": READERS,
    "GET /v1/flow-runs/{run_id}": READERS,
    "POST /v1/flow-runs/{run_id}/cancel": FULL_ONLY,
    "POST /v1/flow-runs/{run_id}/events/{name}": FULL_ONLY,
    # the account, its keys and secrets
    "GET /v1/auth/me": READERS,
    "PATCH /v1/auth/me": FULL_ONLY,
    "GET /v1/auth/key": READERS,
    "POST /v1/auth/key/regenerate": FULL_ONLY,
    "GET /v1/auth/keys": READERS,
    "POST /v1/auth/keys": FULL_ONLY,
    "DELETE /v1/auth/keys/{key_id}": FULL_ONLY,
    "GET /v1/auth/webhook-secret": FULL_ONLY,
    "POST /v1/auth/webhook-secret/regenerate": FULL_ONLY,
    "GET /v1/auth/alert-webhook-secret": FULL_ONLY,
    "POST /v1/auth/alert-webhook-secret/regenerate": FULL_ONLY,
    # the rest
    "GET /v1/alerts": READERS,
    "GET /v1/usage": READERS,
    "GET /v1/echo/{token}": READERS,
}
"""The scopes that may call each authenticated route."""


def route_key(method: str, path: str) -> str:
    """The name of a route in :data:`ROUTE_SCOPES` (``HEAD`` counts as ``GET``)."""
    return f"{'GET' if method == 'HEAD' else method} {path}"


def allows(scope: Scope, route: str) -> bool:
    """Whether a key of ``scope`` may call ``route`` (undeclared routes: full keys only)."""
    return scope in ROUTE_SCOPES.get(route, FULL_ONLY)


def require(scope: Scope, route: str) -> None:
    """403 ``insufficient_scope`` unless a key of ``scope`` may call ``route``."""
    if not allows(scope, route):
        raise Forbidden(
            f"This API key has the '{scope}' scope, which does not allow {route}.",
            code="insufficient_scope",
        )
