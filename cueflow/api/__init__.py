"""The REST API: CueAPI's wire format over the engine.

:func:`create_app` builds the standalone server; :func:`mount` adds the routes to an existing
FastAPI application (whose lifespan then starts and closes the engine).
"""

from cueflow.api.app import create_app, mount, router

__all__ = ["create_app", "mount", "router"]
