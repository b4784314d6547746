"""The plugin manager: loads the built-in plugins and ``cueflow`` entry points and answers
with typed registries.

The built-ins (the modules under ``plugins/``) are ordinary plugins loaded from
:data:`DEFAULT_PLUGINS`, as pytest loads its ``default_plugins`` and Datasette its
``DEFAULT_PLUGINS``: they work without any packaging metadata, and they use the same hooks as
third-party plugins, which come from entry points in the ``cueflow`` group.

One method per hook (:meth:`PluginManager.stores`, :meth:`PluginManager.transports`,
:meth:`PluginManager.notifier`), so the rest of cueflow never calls ``pm.hook.*``. Everything
that can be wrong with a plugin stops start-up with a :class:`cueflow.errors.PluginError` that
names the plugin: a plugin that fails to import, a ``cueflow_*`` function that matches no hook
(a misspelling), a hook that raises, two plugins claiming one store scheme, transport name or
the notifier, and a registered object that lacks part of its protocol.

Operators choose plugins by name: ``CUEFLOW_PLUGINS`` (comma-separated) loads only those (and
the :data:`REQUIRED_PLUGINS`), and fails when one of them is not installed;
``CUEFLOW_DISABLE_PLUGINS`` never loads those, and fails when it names a required one. Plugin
objects passed to ``Engine(plugins=[...])`` are always registered (once: a module loaded
already is not registered again).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import types
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

import cueflow.hookspecs as hookspecs
from cueflow.config import Settings
from cueflow.errors import PluginError
from cueflow.hookspecs import StoreFactory
from cueflow.transport import Notifier, Transport

DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("sqlite", "cueflow_sqlite"),
    ("postgresql", "cueflow_postgres"),
    ("worker", "cueflow_worker"),
    ("webhook", "cueflow_webhook"),
    ("inprocess", "cueflow_inprocess"),
)
"""The built-in plugins, as ``(name, module)`` in registration order. They are loaded from this
list, not from entry points, so cueflow has its stores and transports even where packaging
metadata is missing; ``name`` is what ``CUEFLOW_PLUGINS`` and ``CUEFLOW_DISABLE_PLUGINS`` take."""
REQUIRED_PLUGINS = frozenset({"sqlite", "worker"})
"""Built-ins a server cannot run without: the default store (``DATABASE_URL`` defaults to a
SQLite file) and the default transport (the one the REST API's claim, heartbeat and outcome
endpoints serve). They always load; ``CUEFLOW_DISABLE_PLUGINS`` naming one stops start-up."""
ENTRY_POINT_GROUP = "cueflow"
HOOK_PREFIX = "cueflow_"
MAX_TRANSPORT_NAME = 64
"""Longest transport name a cue row can hold."""
_SCHEME = re.compile(r"[a-z][a-z0-9.-]*")


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _describe(plugin: object) -> str:
    return plugin.__name__ if isinstance(plugin, types.ModuleType) else repr(plugin)


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
        only = _names(self.settings.plugins)
        blocked = _names(self.settings.disable_plugins) or set()
        self._load_default_plugins(only, blocked)
        self._load_entry_points(only, blocked)
        for plugin in extra:
            if not self._pm.is_registered(plugin):  # a built-in, or an entry point's module
                self.register(plugin, name=self._name_for(plugin))
        self._refuse_unknown_hooks()

    # loading ----------------------------------------------------------------------------------
    def _load_default_plugins(self, only: set[str] | None, blocked: set[str]) -> None:
        """Register the built-ins of :data:`DEFAULT_PLUGINS` that are not switched off."""
        required = sorted(blocked & REQUIRED_PLUGINS)
        if required:
            raise PluginError(
                f"CUEFLOW_DISABLE_PLUGINS names {', '.join(required)}, which cueflow cannot run "
                f"without (required built-ins: {', '.join(sorted(REQUIRED_PLUGINS))})"
            )
        for name, module_name in DEFAULT_PLUGINS:
            wanted = name in REQUIRED_PLUGINS or only is None or name in only
            if name in blocked or not wanted:
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(
                    f"built-in cueflow plugin {name!r} ({module_name}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.register(module, name=name)

    def _load_entry_points(self, only: set[str] | None, blocked: set[str]) -> None:
        """Register the third-party plugins: entry points of the ``cueflow`` group."""
        found = list(entry_points(group=ENTRY_POINT_GROUP))
        available = {ep.name for ep in found} | {name for name, _ in DEFAULT_PLUGINS}
        missing = (only or set()) - available
        if missing:
            raise PluginError(
                f"CUEFLOW_PLUGINS names {', '.join(sorted(missing))}, which is not an installed "
                f"cueflow plugin (installed: {', '.join(sorted(available))})"
            )
        for ep in found:
            if ep.name in blocked or (only is not None and ep.name not in only):
                continue
            taken = self._pm.get_plugin(ep.name)
            if taken is not None:
                if isinstance(taken, types.ModuleType) and taken.__name__ == ep.module:
                    continue  # a built-in in older metadata, or one entry point seen twice
                raise PluginError(
                    f"cueflow plugin {ep.name!r} (entry point {ep.value!r}) takes the name of "
                    f"a plugin loaded already ({_describe(taken)}); rename its entry point"
                )
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"cueflow plugin {ep.name!r} (entry point {ep.value!r}) failed to load: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not self._pm.is_registered(module):  # a built-in under another name
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

    def notifier(self, transports: Mapping[str, Transport]) -> Notifier | None:
        """The sender of failure notices, from ``cueflow_register_notifiers`` (``None`` when no
        plugin registers one); ``transports`` are the registered ones, by name."""
        found: list[tuple[str, Notifier]] = []

        def for_plugin(plugin: str) -> Callable[[Notifier], None]:
            def register(notifier: Notifier) -> None:
                if not isinstance(notifier, Notifier) or not all(
                    inspect.iscoroutinefunction(getattr(notifier, method))
                    for method in ("notify", "check_url")
                ):
                    raise PluginError(
                        f"cueflow plugin {plugin!r} registered a notifier without an async "
                        f"notify(notice) and check_url(url): {notifier!r}"
                    )
                if found:
                    raise PluginError(
                        f"cueflow plugins {found[0][0]!r} and {plugin!r} both register a "
                        "notifier; disable one of them"
                    )
                found.append((plugin, notifier))

            return register

        self._call(
            "cueflow_register_notifiers",
            for_plugin,
            transports=types.MappingProxyType(dict(transports)),
            settings=self.settings,
        )
        return found[0][1] if found else None

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
