"""The ``worker`` transport: executions wait in the queue for workers to claim them.

Workers anywhere poll ``GET /v1/executions/claimable``, claim with a lease, heartbeat and report
an outcome; the engine serves all of that for every pull transport, so this plugin only names
the transport.
"""

from __future__ import annotations

from collections.abc import Callable

from cueflow.config import Settings
from cueflow.markers import hookimpl
from cueflow.transport import PullTransport, Transport


@hookimpl
def cueflow_register_transports(register: Callable[[Transport], None], settings: Settings) -> None:
    """Register the ``worker`` transport."""
    register(PullTransport("worker"))
