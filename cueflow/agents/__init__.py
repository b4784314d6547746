"""Agents as cueflow workers.

* :class:`WorkerClient` and its implementations :class:`EngineWorkerClient` (an embedded
  engine) and :class:`HttpWorkerClient` (any cueflow or CueAPI server);
* :class:`WorkerSession`: claims, lease keepalive, idempotent reports, release on exit;
* the tools, written once in :mod:`cueflow.agents.tools`;
* with ``cueflow[agents]`` (langchain-core): :class:`CueflowToolkit` and
  :func:`run_agent_worker`;
* with ``cueflow[mcp]``: :func:`cueflow.agents.mcp_server.build_mcp_server`.

The langchain-core names load on first use, so this package imports without langchain-core.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cueflow.agents.client import ClientError, WorkerClient
from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.agents.tools import TOOL_NAMES

if TYPE_CHECKING:
    from cueflow.agents.langchain import CueflowToolkit
    from cueflow.agents.loop import run_agent_worker
    from cueflow.agents.runs import ExecutionRun

_LAZY = {
    "CueflowToolkit": "cueflow.agents.langchain",
    "ExecutionRun": "cueflow.agents.runs",
    "run_agent_worker": "cueflow.agents.loop",
}

__all__ = [
    "TOOL_NAMES",
    "ClientError",
    "CueflowToolkit",
    "EngineWorkerClient",
    "ExecutionRun",
    "HttpWorkerClient",
    "ToolFailure",
    "WorkerClient",
    "WorkerSession",
    "run_agent_worker",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cueflow.agents' has no attribute {name!r}")
