"""The plugin manager: loads ``cueflow`` entry points and answers with typed registries.

One method per hook (:meth:`PluginManager.stores`, :meth:`PluginManager.transports`), so the
rest of cueflow never calls ``pm.hook.*``. Everything that can be wrong with a plugin stops
start-up with a :class:`cueflow.errors.PluginError` that names the plugin: an entry point that
fails to import, a ``cueflow_*`` function that matches no hook (a misspelling), a hook that
raises, two plugins claiming one store scheme or transport name, and a registered object that
lacks part of its protocol.

Operators choose plugins by entry-point name: ``CUEFLOW_PLUGINS`` (comma-separated) loads only
those, and fails when one of them is not installed; ``CUEFLOW_DISABLE_PLUGINS`` never loads
those. Plugin objects passed to ``Engine(plugins=[...])`` are always registered (once: a module
that an entry point loaded already is not registered again).
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

import cueflow.hookspecs as hookspecs
from cueflow.config import Settings
from cueflow.errors import PluginError
from cueflow.hookspecs import StoreFactory
from cueflow.transport import Transport

ENTRY_POINT_GROUP = "cueflow"
HOOK_PREFIX = "cueflow_"
MAX_TRANSPORT_NAME = 64
"""Longest transport name a cue row can hold."""
_SCHEME = re.compile(r"[a-z][a-z0-9.-]*")


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class _Pluggy(pluggy.PluginManager):
    """pluggy's manager, also taking unmarked ``cueflow_*`` functions for hook implementations
    (as pytest does for ``pytest_*``), so a forgotten marker or a misspelt name fails
    :meth:`check_pending` instead of being ignored."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        unmarked = opts is None and name.startswith(HOOK_PREFIX)
        if unmarked and inspect.isroutine(getattr(plugin, name, None)):
            opts = pluggy.HookimplOpts(
                wrapper=False,
                hookwrapper=False,
                optionalhook=False,
                tryfirst=False,
                trylast=False,
                specname=None,
            )
        return opts


class PluginManager:
    """The loaded plugins of one engine, with one typed method per hook."""

    def __init__(self, settings: Settings, extra: Iterable[object] = ()) -> None:
        self.settings = settings
        self._pm = _Pluggy(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points()
        for plugin in extra:
            if not self._pm.is_registered(plugin):  # also installed: its entry point loaded it
                self.register(plugin, name=self._name_for(plugin))
        self._refuse_unknown_hooks()

    # loading ----------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        only = _names(self.settings.plugins)
        blocked = _names(self.settings.disable_plugins) or set()
        found = list(entry_points(group=ENTRY_POINT_GROUP))
        missing = (only or set()) - {ep.name for ep in found}
        if missing:
            raise PluginError(
                f"CUEFLOW_PLUGINS names {', '.join(sorted(missing))}, which is not an installed "
                f"cueflow plugin (installed: {', '.join(sorted({ep.name for ep in found}))})"
            )
        for ep in found:
            if ep.name in blocked or (only is not None and ep.name not in only):
                continue
            if self._pm.has_plugin(ep.name):
                continue  # the same entry point seen twice on sys.path
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"cueflow plugin {ep.name!r} (entry point {ep.value!r}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.register(module, name=ep.name)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin object or module, as an entry point would, under ``name`` (by default
        the module's name, or the object's class and a number)."""
        name = name or self._name_for(plugin)
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            reason = " ".join(str(exc).split())
            raise PluginError(f"cueflow plugin {name!r} could not be registered: {reason}") from exc

    def _name_for(self, plugin: object) -> str:
        """A readable, unused name: a module's name, or ``module.Class`` (``#2``... if taken)."""
        if isinstance(plugin, types.ModuleType):
            return plugin.__name__
        kind = type(plugin)
        base = f"{kind.__module__}.{kind.__qualname__}".replace(".<locals>", "")
        name, number = base, 1
        while self._pm.has_plugin(name):
            number += 1
            name = f"{base}#{number}"
        return name

    def _refuse_unknown_hooks(self) -> None:
        known = list(hookspecs.all_hooks())
        for hook_name, caller in vars(self._pm.hook).items():
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                close = difflib.get_close_matches(hook_name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(
                    f"cueflow plugin {impl.plugin_name!r} implements unknown hook "
                    f"{hook_name!r}{hint}; known hooks: {', '.join(known)}"
                )

    @property
    def names(self) -> list[str]:
        """Names of the registered plugins (entry-point names for entry points)."""
        return sorted(name for name, _ in self._pm.list_name_plugin())

    # one method per hook ----------------------------------------------------------------------
    def stores(self) -> dict[str, StoreFactory]:
        """Store factories by URL scheme, from ``cueflow_register_stores``."""
        found: dict[str, tuple[str, StoreFactory]] = {}

        def for_plugin(plugin: str) -> Callable[[str, StoreFactory], None]:
            def register(scheme: str, factory: StoreFactory) -> None:
                if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
                    raise PluginError(
                        f"cueflow plugin {plugin!r} registered the invalid store scheme "
                        f"{scheme!r} (lower case, as in 'name://', without '+driver')"
                    )
                if not callable(factory):
                    raise PluginError(
                        f"cueflow plugin {plugin!r} registered a store factory for {scheme!r} "
                        f"that is not callable: {factory!r}"
                    )
                if scheme in found:
                    raise PluginError(
                        f"cueflow plugins {found[scheme][0]!r} and {plugin!r} both register "
                        f"the store scheme {scheme!r}"
                    )
                found[scheme] = (plugin, factory)

            return register

        self._call("cueflow_register_stores", for_plugin)
        return {scheme: factory for scheme, (_, factory) in found.items()}

    def transports(self) -> dict[str, Transport]:
        """Transports by name, from ``cueflow_register_transports``, in registration order."""
        found: dict[str, tuple[str, Transport]] = {}

        def for_plugin(plugin: str) -> Callable[[Transport], None]:
            def register(transport: Transport) -> None:
                problem = transport_problem(transport)
                name = getattr(transport, "name", None)
                if problem is not None:
                    raise PluginError(
                        f"cueflow plugin {plugin!r} registered an invalid transport {name!r}: "
                        f"{problem}"
                    )
                if transport.name in found:
                    raise PluginError(
                        f"cueflow plugins {found[transport.name][0]!r} and {plugin!r} both "
                        f"register the transport {transport.name!r}"
                    )
                found[transport.name] = (plugin, transport)

            return register

        self._call("cueflow_register_transports", for_plugin, settings=self.settings)
        return {name: transport for name, (_, transport) in found.items()}

    def _call(self, hook: str, for_plugin: Callable[[str], Any], **kwargs: Any) -> None:
        """Call every implementation of ``hook`` in registration order, each with a
        ``register`` callback that knows which plugin calls it."""
        for impl in getattr(self._pm.hook, hook).get_hookimpls():
            arguments = {"register": for_plugin(impl.plugin_name), **kwargs}
            try:
                impl.function(**{k: v for k, v in arguments.items() if k in impl.argnames})
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"cueflow plugin {impl.plugin_name!r} failed in {hook}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc


def transport_problem(transport: object) -> str | None:
    """What keeps ``transport`` from satisfying :class:`cueflow.transport.Transport` (and, when
    ``pull`` is false, :class:`cueflow.transport.PushTransport`), or ``None``."""
    name = getattr(transport, "name", None)
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TRANSPORT_NAME:
        return f"name must be a string of 1 to {MAX_TRANSPORT_NAME} characters"
    pull = getattr(transport, "pull", None)
    if not isinstance(pull, bool):
        return "pull must be True or False"
    methods = ["validate_cue", "start", "stop"] + ([] if pull else ["deliver"])
    for method in methods:
        if not inspect.iscoroutinefunction(getattr(transport, method, None)):
            return f"{method} must be an async method"
    if not pull:
        lease = getattr(transport, "lease_seconds", None)
        if isinstance(lease, bool) or not isinstance(lease, int | float) or lease <= 0:
            return "a push transport needs lease_seconds, a positive number"
    return None
