"""Every hook a cueflow plugin can implement, each documented as its contract.

Plugins are discovered through the ``cueflow`` entry-point group and marked with
:data:`cueflow.hookimpl`. The built-in stores and transports are registered the same way.
All hooks are called synchronously at engine start-up, once per engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cueflow.config import Settings
    from cueflow.store import Store
    from cueflow.transport import Transport

hookspec = pluggy.HookspecMarker("cueflow")

StoreFactory = Callable[[str, "Settings"], "Store"]
"""Builds a store from a database URL and the settings; must not connect yet (``open`` does)."""


@hookspec
def cueflow_register_stores(register: Callable[[str, StoreFactory], None]) -> None:
    """Offer storage backends.

    Called once when an engine starts, before any store is opened. Call
    ``register(scheme, factory)`` once per URL scheme the plugin serves (``"sqlite"``,
    ``"postgresql"`` ...). The engine picks the factory whose scheme matches the part of the
    database URL before ``://`` (a ``+driver`` suffix is ignored) and calls
    ``factory(url, settings)``. Registering a scheme another plugin registered is a start-up
    error. Return value: ignored.
    """


@hookspec
def cueflow_register_transports(register: Callable[[Transport], None], settings: Settings) -> None:
    """Offer delivery transports.

    Called once when an engine starts. Call ``register(transport)`` with an object that
    satisfies :class:`cueflow.transport.Transport`; its ``name`` is the value cues put in
    ``transport``. ``settings`` are the engine's settings, for transports that are configured.
    Registering a name twice is a start-up error. Return value: ignored.
    """


def all_hooks() -> dict[str, Any]:
    """Every hook specification of this module, by name."""
    return {name: obj for name, obj in globals().items() if name.startswith("cueflow_")}
