"""cueflow: a scheduling and delivery engine for jobs and AI agents, wire-compatible with CueAPI."""

import pluggy

hookimpl = pluggy.HookimplMarker("cueflow")
"""Marker for plugin hook implementations: ``@cueflow.hookimpl``."""

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
