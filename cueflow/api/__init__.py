"""The REST API: CueAPI's wire format over the engine."""

from cueflow.api.app import create_app, router

__all__ = ["create_app", "router"]
