"""Fixtures of the store conformance suite: the author's ``store_url``, engines over it and a
recording push transport to drive push delivery through the store."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.testing.harness import (
    EngineFixtures,
    RecordingTransport,
    TransportPlugin,
    opened_engine,
)

OpenEngine = Callable[[], AbstractAsyncContextManager[Engine]]


class StoreFixtures(EngineFixtures):
    """What a store conformance class needs. The author provides ``store_url``."""

    pytestmark = pytest.mark.asyncio

    store_is_shared: bool = True
    """Whether two engines opened on one ``store_url`` see the same data (``False`` for an
    in-memory store, whose every engine has a database of its own). Tests of several nodes
    and of reopening skip when it is ``False``."""

    @pytest.fixture
    def store_url(self) -> str:
        """The database URL of a fresh, empty store for one test. The plugin author overrides
        this fixture (it may also be async, with cleanup after ``yield``)."""
        raise NotImplementedError("override the store_url fixture with your store's URL")

    @pytest.fixture
    def recorder(self) -> RecordingTransport:
        """The push transport the suite's engines have (``conformance-recorder``)."""
        return RecordingTransport()

    @pytest.fixture
    def engine_plugins(
        self, cueflow_plugins: list[object], recorder: RecordingTransport
    ) -> list[object]:
        """The author's plugins plus the recording transport."""
        return [*cueflow_plugins, TransportPlugin(recorder)]

    @pytest.fixture
    def another_engine(
        self,
        store_url: str,
        clock: FakeClock,
        engine_plugins: list[object],
        cueflow_settings: dict[str, Any],
    ) -> OpenEngine:
        """Opens a second engine on the same store (another node); skips unless shared."""
        if not self.store_is_shared:
            pytest.skip("this store is not shared between engines")

        def open_another() -> AbstractAsyncContextManager[Engine]:
            return opened_engine(store_url, clock, engine_plugins, cueflow_settings)

        return open_another
