"""The plugin manager: entry points, allow and block lists, and every way a plugin can be wrong
stopping start-up with an error that names it."""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import cueflow.plugins
from cueflow import hookimpl
from cueflow.config import Settings
from cueflow.engine import Engine
from cueflow.errors import CueflowError, PluginError
from cueflow.plugins import DEFAULT_PLUGINS, REQUIRED_PLUGINS, PluginManager
from cueflow.testing import RecordingTransport, TransportPlugin
from cueflow.transport import DeliveryResult, Notice, Notifier, PullTransport, Transport
from tests.conftest import make_settings

BUILT_IN = {"sqlite", "postgresql", "worker", "webhook", "inprocess"}
ROOT = Path(__file__).resolve().parent.parent


def manager(*extra: object, **settings: Any) -> PluginManager:
    return PluginManager(make_settings("sqlite://", **settings), extra=extra)


def with_entry_points(monkeypatch: pytest.MonkeyPatch, *extra: EntryPoint) -> None:
    """Make the manager see the installed entry points plus ``extra``."""
    real = cueflow.plugins.entry_points

    def fake(*, group: str) -> list[EntryPoint]:
        return [*real(group=group), *extra]

    monkeypatch.setattr(cueflow.plugins, "entry_points", fake)


class StorePlugin:
    """Registers ``scheme`` with a factory that builds the in-memory SQLite store."""

    def __init__(self, scheme: str = "alt", factory: object = None) -> None:
        self.scheme, self.factory = scheme, factory

    @hookimpl
    def cueflow_register_stores(self, register: Callable[[str, Any], None]) -> None:
        from cueflow_sqlite import open_store

        def in_memory(url: str, settings: Settings) -> Any:
            return open_store("sqlite://", settings)

        register(self.scheme, self.factory if self.factory is not None else in_memory)


# entry points ---------------------------------------------------------------------------------


def without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the manager see no installed entry point at all (no packaging metadata)."""
    monkeypatch.setattr(cueflow.plugins, "entry_points", lambda *, group: [])


async def test_built_in_plugins_load_from_the_default_list_without_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_entry_points(monkeypatch)
    plugins = manager()
    assert set(plugins.names) == BUILT_IN
    assert {"sqlite", "postgresql", "postgres"} <= set(plugins.stores())
    assert list(plugins.transports()) == ["worker", "webhook", "inprocess"]
    engine = Engine(make_settings("sqlite://"))
    await engine.open()
    try:
        user = await engine.principal((await engine.register("a@example.com"))["api_key"])
        cue, _ = await engine.create_cue(
            user, {"name": "n", "transport": "worker", "schedule": _hourly()}
        )
        assert cue.transport == "worker"
    finally:
        await engine.close()


def test_the_built_ins_are_not_also_declared_as_entry_points() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "cueflow" not in project["project"].get("entry-points", {})
    assert {name for name, _ in DEFAULT_PLUGINS} == BUILT_IN


def test_an_entry_point_of_a_built_in_module_does_not_register_it_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Metadata of an older install still declaring the built-ins changes nothing."""
    stale = [EntryPoint(name=n, value=m, group="cueflow") for n, m in DEFAULT_PLUGINS]
    renamed = EntryPoint(name="sqlite-again", value="cueflow_sqlite", group="cueflow")
    with_entry_points(monkeypatch, *stale, renamed)
    plugins = manager()
    assert sorted(plugins.names) == sorted(BUILT_IN)
    assert "worker" in plugins.transports() and "sqlite" in plugins.stores()


def test_an_entry_point_taking_a_built_in_name_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    impostor = EntryPoint(name="webhook", value="cueflow_no_such_module", group="cueflow")
    with_entry_points(monkeypatch, impostor)
    with pytest.raises(PluginError, match=r"'webhook' \(entry point 'cueflow_no_such_module'\)"):
        manager()


@pytest.mark.parametrize("package", ["cueflow", *(module for _, module in DEFAULT_PLUGINS)])
def test_every_package_a_user_imports_from_ships_py_typed(package: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folder = ROOT / package if package == "cueflow" else ROOT / "plugins" / package
    assert (folder / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"][package]


@pytest.mark.parametrize("required", sorted(REQUIRED_PLUGINS))
def test_disabling_a_required_built_in_is_a_clear_start_up_error(required: str) -> None:
    with pytest.raises(PluginError) as error:
        Engine(make_settings("sqlite://", disable_plugins=f"webhook,{required}"))
    message = str(error.value)
    assert f"CUEFLOW_DISABLE_PLUGINS names {required}, which cueflow cannot run without" in message


def test_the_required_built_ins_load_whatever_cueflow_plugins_names() -> None:
    plugins = manager(plugins="webhook")
    assert plugins.names == ["sqlite", "webhook", "worker"]


def test_a_plugin_whose_import_fails_stops_start_up_naming_its_entry_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EntryPoint(name="broken", value="cueflow_no_such_module", group="cueflow")
    with_entry_points(monkeypatch, broken)
    with pytest.raises(PluginError) as error:
        Engine(make_settings("sqlite://"))
    message = str(error.value)
    assert "'broken'" in message and "cueflow_no_such_module" in message
    assert "ModuleNotFoundError" in message


def test_a_blocked_plugin_is_not_even_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="broken", value="cueflow_no_such_module", group="cueflow")
    with_entry_points(monkeypatch, broken)
    assert "broken" not in manager(disable_plugins="broken").names
    assert "broken" not in manager(plugins="sqlite,worker").names


def test_cueflow_plugins_loads_only_the_named_entry_points() -> None:
    plugins = manager(plugins="sqlite, worker")
    assert plugins.names == ["sqlite", "worker"]
    assert list(plugins.transports()) == ["worker"]
    assert list(plugins.stores()) == ["sqlite"]


def test_cueflow_disable_plugins_keeps_the_named_entry_points_out() -> None:
    plugins = manager(disable_plugins="webhook,postgresql")
    assert "webhook" not in plugins.transports()
    assert "postgresql" not in plugins.stores()
    assert "worker" in plugins.transports()


def test_the_allow_and_block_lists_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUEFLOW_PLUGINS", "sqlite,worker,webhook")
    monkeypatch.setenv("CUEFLOW_DISABLE_PLUGINS", "webhook")
    settings = Settings(_env_file=None, database_url="sqlite://")  # type: ignore[call-arg]
    assert PluginManager(settings).names == ["sqlite", "worker"]


def test_pinning_a_plugin_that_is_not_installed_stops_start_up_naming_it() -> None:
    with pytest.raises(PluginError, match="CUEFLOW_PLUGINS names nonexistent, which is not"):
        manager(plugins="sqlite,nonexistent")


async def test_an_engine_without_a_transport_plugin_refuses_its_cues() -> None:
    engine = Engine(make_settings("sqlite://", disable_plugins="webhook"))
    await engine.open()
    try:
        user = await engine.principal((await engine.register("a@example.com"))["api_key"])
        with pytest.raises(Exception, match="transport must be") as refused:
            await engine.create_cue(
                user, {"name": "n", "transport": "webhook", "schedule": _hourly()}
            )
        assert getattr(refused.value, "status", None) == 422
    finally:
        await engine.close()


# plugin objects -------------------------------------------------------------------------------


def test_a_plugin_object_passed_to_the_engine_is_registered_like_an_entry_point() -> None:
    recorder = RecordingTransport()
    engine = Engine(make_settings("alt://"), plugins=[TransportPlugin(recorder), StorePlugin()])
    assert engine.transports[recorder.name] is recorder
    assert engine.store.name == "sqlite"
    assert list(engine.transports)[-1] == recorder.name  # entry points come first


def test_a_module_both_installed_and_passed_explicitly_is_registered_once() -> None:
    import cueflow_worker

    plugins = manager(cueflow_worker)
    assert plugins.names.count("worker") == 1
    assert "worker" in plugins.transports()


def test_an_implementation_may_take_only_some_of_a_hooks_parameters() -> None:
    seen: list[Settings] = []

    class Both:
        @hookimpl
        def cueflow_register_transports(
            self, register: Callable[[Transport], None], settings: Settings
        ) -> None:
            seen.append(settings)
            register(PullTransport("both"))

    class RegisterOnly:
        @hookimpl
        def cueflow_register_transports(self, register: Callable[[Transport], None]) -> None:
            register(PullTransport("register-only"))

    plugins = manager(Both(), RegisterOnly())
    assert {"both", "register-only"} <= set(plugins.transports())
    assert seen == [plugins.settings]


def test_an_unmarked_cueflow_function_is_taken_as_a_hook_implementation() -> None:
    module = types.ModuleType("unmarked_plugin")

    def cueflow_register_transports(register: Callable[[Transport], None]) -> None:
        register(PullTransport("unmarked"))

    module.cueflow_register_transports = cueflow_register_transports  # type: ignore[attr-defined]
    assert "unmarked" in manager(module).transports()


# invalid plugins ------------------------------------------------------------------------------


def test_a_misspelt_hook_stops_start_up_naming_the_plugin_and_the_hook() -> None:
    class Misspelt:
        @hookimpl
        def cueflow_register_transport(self, register: Callable[[Transport], None]) -> None:
            """One letter short."""

    with pytest.raises(PluginError) as error:
        Engine(make_settings("sqlite://"), plugins=[Misspelt()])
    message = str(error.value)
    assert "implements unknown hook 'cueflow_register_transport'" in message
    assert "did you mean 'cueflow_register_transports'?" in message
    assert "Misspelt" in message


def test_a_misspelt_unmarked_hook_also_stops_start_up() -> None:
    module = types.ModuleType("typo_plugin")
    module.cueflow_register_store = lambda register: None  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="'typo_plugin' implements unknown hook"):
        manager(module)


def test_a_hook_implementation_asking_for_an_unknown_parameter_is_refused() -> None:
    class Greedy:
        @hookimpl
        def cueflow_register_stores(self, register: Callable[..., None], engine: Any) -> None:
            """``engine`` is no parameter of this hook."""

    with pytest.raises(PluginError, match=r"could not be registered.*engine"):
        manager(Greedy())


def test_a_hook_that_raises_stops_start_up_naming_the_plugin() -> None:
    class Exploding:
        @hookimpl
        def cueflow_register_transports(self) -> None:
            raise RuntimeError("no licence key")

    with pytest.raises(PluginError) as error:
        manager(Exploding()).transports()
    message = str(error.value)
    assert "failed in cueflow_register_transports: RuntimeError: no licence key" in message


def test_two_plugins_registering_one_transport_name_are_both_named() -> None:
    with pytest.raises(PluginError, match=r"'worker' and .* both register the transport 'worker'"):
        manager(TransportPlugin(PullTransport("worker"))).transports()


def test_two_plugins_registering_one_store_scheme_are_both_named() -> None:
    with pytest.raises(PluginError, match=r"'sqlite' and .* both register the store scheme"):
        manager(StorePlugin("sqlite")).stores()


@pytest.mark.parametrize(
    ("scheme", "factory", "problem"),
    [
        ("SQLITE2", None, "invalid store scheme 'SQLITE2'"),
        ("my+driver", None, "invalid store scheme 'my+driver'"),
        ("", None, "invalid store scheme ''"),
        ("alt", "not callable", "that is not callable"),
    ],
)
def test_a_malformed_store_registration_is_refused(
    scheme: str, factory: object, problem: str
) -> None:
    with pytest.raises(PluginError, match=re.escape(problem)):
        manager(StorePlugin(scheme, factory)).stores()


class Fake:
    """A transport built from attributes, to break one at a time."""

    def __init__(self, **attributes: Any) -> None:
        async def coroutine(*args: Any) -> None:
            return None

        defaults: Mapping[str, Any] = {
            "name": "fake",
            "pull": False,
            "lease_seconds": 5.0,
            "validate_cue": coroutine,
            "start": coroutine,
            "stop": coroutine,
            "deliver": coroutine,
        }
        for key, value in {**defaults, **attributes}.items():
            if value is not _MISSING:
                setattr(self, key, value)


_MISSING = object()


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({"name": ""}, "name must be a string of 1 to 64 characters"),
        ({"name": "x" * 65}, "name must be a string of 1 to 64 characters"),
        ({"name": _MISSING}, "name must be a string"),
        ({"pull": "no"}, "pull must be True or False"),
        ({"validate_cue": lambda cue, previous=None: None}, "validate_cue must be an async"),
        ({"stop": _MISSING}, "stop must be an async method"),
        ({"deliver": _MISSING}, "deliver must be an async method"),
        ({"lease_seconds": 0}, "lease_seconds, a positive number"),
        ({"lease_seconds": _MISSING}, "lease_seconds, a positive number"),
    ],
)
def test_a_transport_missing_part_of_its_protocol_is_refused_naming_the_plugin(
    attributes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PluginError) as error:
        manager(TransportPlugin(Fake(**attributes))).transports()  # type: ignore[arg-type]
    assert "registered an invalid transport" in str(error.value)
    assert problem in str(error.value)


def test_a_pull_transport_needs_no_deliver_or_lease() -> None:
    fake = Fake(name="pulled", pull=True, deliver=_MISSING, lease_seconds=_MISSING)
    assert "pulled" in manager(TransportPlugin(fake)).transports()  # type: ignore[arg-type]


# capabilities ---------------------------------------------------------------------------------


class Bell:
    """A notifier that records notices instead of sending them."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def notify(self, notice: Notice) -> DeliveryResult:
        self.notices.append(notice)
        return DeliveryResult(ok=True)

    async def check_url(self, url: str) -> None:
        if "forbidden" in url:
            raise ValueError("Bell refuses this URL")


class NotifierPlugin:
    def __init__(self, notifier: object) -> None:
        self.notifier = notifier

    @hookimpl
    def cueflow_register_notifiers(self, register: Callable[[Notifier], None]) -> None:
        register(self.notifier)  # type: ignore[arg-type]


def test_the_notifier_is_the_one_registered_through_cueflow_register_notifiers() -> None:
    from cueflow_webhook import WebhookTransport

    engine = Engine(make_settings("sqlite://"))
    assert engine.notifier is engine.transports["webhook"]
    assert isinstance(engine.notifier, WebhookTransport)
    assert Engine(make_settings("sqlite://", disable_plugins="webhook")).notifier is None
    bell = Bell()
    settings = make_settings("sqlite://", disable_plugins="webhook")
    engine = Engine(settings, plugins=[NotifierPlugin(bell)])
    assert engine.notifier is bell


def test_a_transport_with_a_notify_method_is_not_taken_for_the_notifier() -> None:
    class Noisy(RecordingTransport):
        async def notify(self, notice: Notice) -> DeliveryResult:
            raise AssertionError("never asked: it registered no notifier")

    settings = make_settings("sqlite://", disable_plugins="webhook")
    assert Engine(settings, plugins=[TransportPlugin(Noisy())]).notifier is None


def test_two_notifiers_stop_start_up_naming_both_plugins() -> None:
    with pytest.raises(PluginError, match=r"'webhook' and .*NotifierPlugin' both register a"):
        Engine(make_settings("sqlite://"), plugins=[NotifierPlugin(Bell())])


def test_a_notifier_lacking_its_methods_is_refused() -> None:
    settings = make_settings("sqlite://", disable_plugins="webhook")
    with pytest.raises(PluginError, match="registered a notifier without an async notify"):
        Engine(settings, plugins=[NotifierPlugin(object())])


async def test_alert_webhook_urls_are_vetted_by_the_registered_notifier() -> None:
    settings = make_settings("sqlite://", disable_plugins="webhook")
    engine = Engine(settings, plugins=[NotifierPlugin(Bell())])
    await engine.open()
    try:
        user = await engine.principal((await engine.register("a@example.com"))["api_key"])
        with pytest.raises(CueflowError, match="Bell refuses this URL") as refused:
            await engine.update_me(user, {"alert_webhook_url": "https://forbidden.example.com/x"})
        assert refused.value.code == "invalid_alert_webhook_url"
    finally:
        await engine.close()


def _hourly() -> dict[str, str]:
    return {"type": "recurring", "cron": "0 * * * *"}
