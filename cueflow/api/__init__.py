"""The REST API: CueAPI's wire format over the engine.

:func:`create_app` builds the standalone server; :func:`mount` adds the routes to an existing
FastAPI application (whose lifespan then starts and closes the engine). Both need the
``server`` extra (FastAPI); without it importing this package raises
:class:`cueflow.extras.MissingExtra` naming it.
"""

from cueflow.extras import extra_for, missing_extra

try:
    from cueflow.api.app import create_app, mount, router
except ModuleNotFoundError as exc:  # FastAPI comes with the server extra
    if extra_for(exc) is None:
        raise
    raise missing_extra("cueflow.api (the REST API)", exc, "server") from exc

__all__ = ["create_app", "mount", "router"]
