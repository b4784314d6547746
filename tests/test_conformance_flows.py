"""The store conformance suite covers the flow store: every method of
:class:`cueflow.store.flows.FlowStore` is called by ``cueflow/testing/store_flows.py``, so a
method added to the protocol without a conformance test fails here."""

from __future__ import annotations

import inspect

import cueflow.testing.store_flows as store_flows
from cueflow.store.flows import FlowStore
from cueflow.testing import StoreConformance


def test_every_flow_store_method_is_called_by_the_conformance_suite() -> None:
    source = inspect.getsource(store_flows)
    methods = [name for name, _ in inspect.getmembers(FlowStore) if not name.startswith("_")]
    assert len(methods) >= 20
    assert [name for name in methods if f"tx.{name}(" not in source] == []


def test_the_flow_tests_are_part_of_the_store_conformance_suite() -> None:
    assert issubclass(StoreConformance, store_flows.StoreFlowTests)
