"""The conformance suite: pytest test classes any store or transport plugin runs against itself.

Part of cueflow's public API. A plugin's own test module subclasses a suite class and provides
a fixture or two; pytest then runs every test of the suite against the plugin::

    import pytest
    from cueflow.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_url(self, tmp_path):
            return f"mystore:///{tmp_path}/db"

* :class:`StoreConformance` needs ``store_url``;
* :class:`TransportConformance` needs ``transport_name``;
* :class:`PushTransportConformance` needs ``transport_name`` and ``received_execution_ids``.

Every test drives a real :class:`cueflow.engine.Engine` (on a :class:`cueflow.clock.FakeClock`)
built from the built-ins, the installed entry points and the ``cueflow_plugins`` fixture. The
suites need pytest and pytest-asyncio (strict or auto mode). ``docs/plugins.md`` describes
each fixture.
"""

from cueflow.testing.harness import (
    EngineFixtures,
    RecordingTransport,
    TransportPlugin,
    engine_settings,
    fire,
    new_user,
    one_time_cue,
    opened_engine,
)
from cueflow.testing.store import StoreConformance
from cueflow.testing.transport import PushTransportConformance, TransportConformance

__all__ = [
    "EngineFixtures",
    "PushTransportConformance",
    "RecordingTransport",
    "StoreConformance",
    "TransportConformance",
    "TransportPlugin",
    "engine_settings",
    "fire",
    "new_user",
    "one_time_cue",
    "opened_engine",
]
