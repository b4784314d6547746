"""The store conformance suite: :class:`StoreConformance`."""

from __future__ import annotations

from cueflow.testing.store_claims import StoreClaimTests
from cueflow.testing.store_data import StoreDataTests
from cueflow.testing.store_delivery import StoreDeliveryTests
from cueflow.testing.store_fire_keys import StoreFireKeyTests
from cueflow.testing.store_flows import StoreFlowTests
from cueflow.testing.store_retention import StoreRetentionTests
from cueflow.testing.store_stats import StoreStatsTests
from cueflow.testing.store_upkeep import StoreUpkeepTests


class StoreConformance(
    StoreDataTests,
    StoreClaimTests,
    StoreDeliveryTests,
    StoreUpkeepTests,
    StoreFlowTests,
    StoreFireKeyTests,
    StoreRetentionTests,
    StoreStatsTests,
):
    """Every test a store plugin must pass, run through a real :class:`cueflow.engine.Engine`.

    Subclass it in a test module (the name must start with ``Test``) and provide the fixture
    ``store_url``: the URL of a fresh, empty store for each test (an async fixture may create
    and drop a database around ``yield``). Optional: ``cueflow_plugins`` (plugin objects to
    register, for a store plugin that is not installed through an entry point),
    ``cueflow_settings`` (extra settings) and the class attribute ``store_is_shared = False``
    for a store that two engines cannot share (in memory). Needs pytest-asyncio, in either
    mode.
    """
