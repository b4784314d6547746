"""The plugin manager: loads ``cueflow`` entry points and answers with typed registries.

One method per hook, so the rest of cueflow never calls ``pm.hook.*`` directly. A plugin that
fails to import, or implements a hook that does not exist, stops start-up with an error naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from cueflow import hookspecs
from cueflow.config import Settings
from cueflow.errors import PluginError
from cueflow.hookspecs import StoreFactory
from cueflow.transport import Transport

ENTRY_POINT_GROUP = "cueflow"


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginManager:
    """The loaded plugins of one engine."""

    def __init__(self, settings: Settings, extra: Iterable[object] = ()) -> None:
        self.settings = settings
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points(_names(settings.plugins), _names(settings.disable_plugins) or set())
        for plugin in extra:
            self.register(plugin)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"cueflow plugin {exc.plugin_name!r} is invalid: {exc}") from exc

    def _load_entry_points(self, only: set[str] | None, blocked: set[str]) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (only is not None and ep.name not in only):
                continue
            if self._pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"cueflow plugin {ep.name!r} ({ep.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.register(module, name=ep.name)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin object or module (as entry points do)."""
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            label = name or getattr(plugin, "__name__", repr(plugin))
            raise PluginError(f"cueflow plugin {label!r} could not be registered: {exc}") from exc

    @property
    def names(self) -> list[str]:
        """Names of the registered plugins."""
        return sorted(name for name, _ in self._pm.list_name_plugin())

    def stores(self) -> dict[str, StoreFactory]:
        """Store factories by URL scheme (from ``cueflow_register_stores``)."""
        found: dict[str, StoreFactory] = {}

        def register(scheme: str, factory: StoreFactory) -> None:
            if scheme in found:
                raise PluginError(f"two plugins register the store scheme {scheme!r}")
            found[scheme] = factory

        self._call("cueflow_register_stores", register=register)
        return found

    def transports(self) -> dict[str, Transport]:
        """Transports by name (from ``cueflow_register_transports``)."""
        found: dict[str, Transport] = {}

        def register(transport: Transport) -> None:
            if transport.name in found:
                raise PluginError(f"two plugins register the transport {transport.name!r}")
            found[transport.name] = transport

        self._call("cueflow_register_transports", register=register, settings=self.settings)
        return found

    def _call(self, hook: str, **kwargs: Any) -> None:
        for impl in self._pm.hook.__dict__[hook].get_hookimpls():
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"cueflow plugin {impl.plugin_name!r} failed in {hook}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
