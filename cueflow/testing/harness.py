"""What the conformance suites share: engine fixtures, a recording push transport and helpers
that drive an engine on a fake clock.

The fixtures are methods of :class:`EngineFixtures`, so they reach the tests of every class
that inherits it (the plugin author's class included) and nothing else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.config import Settings
from cueflow.engine import Engine
from cueflow.markers import hookimpl
from cueflow.records import Cue, Execution
from cueflow.transport import Delivery, DeliveryResult, Transport, TransportServices

SCENARIO_TIMEOUT = 60.0
"""Longest any one conformance scenario may wait for the engine (a hang fails, never blocks)."""


def engine_settings(store_url: str, **overrides: Any) -> Settings:
    """Settings for a conformance engine: no ``.env`` file, the given store, ``overrides``."""
    return Settings(_env_file=None, database_url=store_url, **overrides)


@asynccontextmanager
async def opened_engine(
    store_url: str,
    clock: FakeClock,
    plugins: Iterable[object] = (),
    settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[Engine]:
    """An opened engine (store connected and migrated, no background tasks) on ``clock``."""
    engine = Engine(engine_settings(store_url, **(settings or {})), clock=clock, plugins=plugins)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


class EngineFixtures:
    """Fixtures every conformance class uses; override the ``cueflow_*`` ones as needed."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        """The engine's clock; the tests move it by hand."""
        return FakeClock()

    @pytest.fixture
    def cueflow_plugins(self) -> list[object]:
        """Plugin objects or modules to register besides the built-ins and the installed entry
        points (for a plugin under test that is not installed). Default: none."""
        return []

    @pytest.fixture
    def cueflow_settings(self) -> dict[str, Any]:
        """Extra :class:`cueflow.config.Settings` values for the engines. Default: none."""
        return {}

    @pytest.fixture
    def engine_plugins(self, cueflow_plugins: list[object]) -> list[object]:
        """The plugin objects the suite's engines get: ``cueflow_plugins`` and whatever the
        suite itself adds."""
        return list(cueflow_plugins)

    @pytest_asyncio.fixture
    async def engine(
        self,
        store_url: str,
        clock: FakeClock,
        engine_plugins: list[object],
        cueflow_settings: dict[str, Any],
    ) -> AsyncIterator[Engine]:
        """An opened engine on ``store_url``; closed after the test."""
        async with opened_engine(store_url, clock, engine_plugins, cueflow_settings) as engine:
            yield engine


class RecordingTransport:
    """A push transport that records every delivery and answers with the results it is given
    (success when it has none left). The store suite uses it to drive push delivery."""

    name = "conformance-recorder"
    pull = False
    lease_seconds = 30.0

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.results: list[DeliveryResult] = []

    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """Any cue is fine."""

    async def start(self, services: TransportServices) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Record ``delivery``; answer with the next queued result."""
        self.deliveries.append(delivery)
        return self.results.pop(0) if self.results else DeliveryResult(ok=True, http_status=200)


class TransportPlugin:
    """A plugin object registering the given transports (for transports that are not installed
    through an entry point)."""

    def __init__(self, *transports: Transport) -> None:
        self.transports = transports

    @hookimpl
    def cueflow_register_transports(self, register: Callable[[Transport], None]) -> None:
        """Register the transports."""
        for transport in self.transports:
            register(transport)


async def new_user(engine: Engine, email: str | None = None) -> Principal:
    """Register a user and return the caller it authenticates as."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    return await engine.principal((await engine.register(email))["api_key"])


async def one_time_cue(
    engine: Engine,
    user: Principal,
    transport: str = "worker",
    *,
    delay: float = 60,
    name: str | None = None,
    **fields: Any,
) -> Cue:
    """Create a one-time cue of ``transport`` due ``delay`` seconds from now."""
    at = engine.clock.now() + timedelta(seconds=delay)
    spec: dict[str, Any] = {
        "name": name or f"cue-{uuid.uuid4().hex[:10]}",
        "transport": transport,
        "schedule": {"type": "once", "at": at.isoformat()},
        "payload": {"task": "conformance"},
        **fields,
    }
    cue, _ = await engine.create_cue(user, spec)
    return cue


async def fire(engine: Engine, clock: FakeClock, seconds: float = 60) -> int:
    """Move the clock on by ``seconds`` and fire every due cue; the executions created."""
    clock.advance(seconds)
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        return await engine.fire_due()


async def only_execution(engine: Engine, user: Principal, cue_id: str) -> Execution:
    """The one execution of a cue."""
    found, total = await engine.cue_executions(user, cue_id)
    assert total == 1, f"expected one execution of {cue_id}, found {total}"
    return found[0]
