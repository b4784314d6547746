"""The pluggy marker for hook implementations, in a leaf module: plugins (built-in ones
included) import it without pulling in the package's ``__init__``. Also importable as
``cueflow.hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("cueflow")
"""Marker for plugin hook implementations: ``@cueflow.hookimpl``."""
