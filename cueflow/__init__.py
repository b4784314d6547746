"""cueflow: a scheduling and delivery engine for jobs and AI agents, wire-compatible with CueAPI.

Embedding in a few lines (see README, "Embedding")::

    import cueflow

    engine = cueflow.open_engine("sqlite:///app.db")

    @engine.handler("send-report")
    def send_report(payload: dict) -> str: ...

``Engine``, ``Settings``, ``Principal``, ``HandlerContext``, ``open_engine``, the record types
the engine returns (``Cue``, ``Execution``, ``Account``, ``Worker``, ``Alert``, ``QueuedRun``,
``ExecutionPage``, ``ExecutionFilter``: :mod:`cueflow.records`; ``FiredExecution``, what a
manual fire answers: :mod:`cueflow.manual_runs`) and the flows-in-code API
(``Flow``, ``StepContext``, ``Retry``, ``FlowRun``, ``StepRun``, ``StepFailure``:
``docs/flows.md``, "Flows in Python") and the REST API's clients (``Client``,
``AsyncClient``: :mod:`cueflow.client`) are imported on first use, so plugins importing
:data:`hookimpl` stay cheap. So is :mod:`cueflow.webhooks` (``cueflow.webhooks.verify``, for
receivers of webhook deliveries), which imports no part of the engine or the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cueflow.markers import hookimpl
from cueflow.version import __version__

if TYPE_CHECKING:
    from cueflow import webhooks
    from cueflow.authentication import Principal
    from cueflow.client import AsyncClient, Client
    from cueflow.config import Settings
    from cueflow.engine import Engine, open_engine
    from cueflow.engine.flow_declarations import Flow, Retry, StepContext
    from cueflow.engine.flow_results import FlowRun, StepFailure, StepRun
    from cueflow.handler_context import HandlerContext
    from cueflow.manual_runs import FiredExecution
    from cueflow.records import Account, Alert, Cue, Execution, QueuedRun, Worker
    from cueflow.store import ExecutionFilter, ExecutionPage

_LAZY = {
    "Client": "cueflow.client",
    "AsyncClient": "cueflow.client",
    "Engine": "cueflow.engine",
    "open_engine": "cueflow.engine",
    "Settings": "cueflow.config",
    "Principal": "cueflow.authentication",
    "HandlerContext": "cueflow.handler_context",
    "Flow": "cueflow.engine.flow_declarations",
    "Retry": "cueflow.engine.flow_declarations",
    "StepContext": "cueflow.engine.flow_declarations",
    "FlowRun": "cueflow.engine.flow_results",
    "StepFailure": "cueflow.engine.flow_results",
    "StepRun": "cueflow.engine.flow_results",
    "Account": "cueflow.records",
    "Alert": "cueflow.records",
    "Cue": "cueflow.records",
    "Execution": "cueflow.records",
    "FiredExecution": "cueflow.manual_runs",
    "QueuedRun": "cueflow.records",
    "Worker": "cueflow.records",
    "ExecutionFilter": "cueflow.store",
    "ExecutionPage": "cueflow.store",
}

__all__ = [
    "Account",
    "Alert",
    "AsyncClient",
    "Client",
    "Cue",
    "Engine",
    "Execution",
    "ExecutionFilter",
    "ExecutionPage",
    "FiredExecution",
    "Flow",
    "FlowRun",
    "HandlerContext",
    "Principal",
    "QueuedRun",
    "Retry",
    "Settings",
    "StepContext",
    "StepFailure",
    "StepRun",
    "Worker",
    "__version__",
    "hookimpl",
    "open_engine",
    "webhooks",
]


def __getattr__(name: str) -> Any:
    if name == "webhooks":
        return importlib.import_module("cueflow.webhooks")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cueflow' has no attribute {name!r}")
