"""What the use cases, the scheduler, the dispatcher, the sweeper, metrics and health receive.

The :class:`~cueflow.engine.Engine` builds one :class:`Services` from its settings, clock,
store and plugins and hands it down; nothing below the engine sees the engine itself
(Procrastinate's ``JobManager(connector)`` is the model). See ``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cueflow.clock import Clock
from cueflow.config import Settings
from cueflow.errors import CueValidationError
from cueflow.loops import Loops
from cueflow.metrics import Metrics
from cueflow.signals import Signals
from cueflow.store import Store
from cueflow.transport import Notifier, PushTransport, Transport


class Transports(Mapping[str, Transport]):
    """The engine's transports by name (read-only), with the questions the use cases ask."""

    def __init__(
        self, transports: Mapping[str, Transport], notifier: Notifier | None = None
    ) -> None:
        self._transports = dict(transports)
        self.notifier = notifier
        """Sends failure notices: the one registered through ``cueflow_register_notifiers``
        (the webhook transport), or ``None``."""

    def __getitem__(self, name: str) -> Transport:
        return self._transports[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._transports)

    def __len__(self) -> int:
        return len(self._transports)

    def named(self, name: str) -> Transport:
        """The transport called ``name``, or a 422 naming the available ones."""
        found = self._transports.get(name)
        if found is None:
            names = " or ".join(f"'{n}'" for n in sorted(self._transports))
            raise CueValidationError(f"body: Value error, transport must be {names}")
        return found

    def is_pull(self, name: str) -> bool:
        """Whether executions of ``name`` wait for workers (unknown transports do)."""
        found = self._transports.get(name)
        return found is None or found.pull

    def pull(self) -> list[str]:
        """Names of the transports whose executions workers claim."""
        return [name for name, t in self._transports.items() if t.pull]

    def push(self) -> dict[str, PushTransport]:
        """The transports the dispatcher delivers to, by name."""
        return {name: cast(PushTransport, t) for name, t in self._transports.items() if not t.pull}


@dataclass(frozen=True, slots=True)
class Services:
    """The parts of one engine that do the work, shared by everything below the engine."""

    settings: Settings
    clock: Clock
    store: Store
    metrics: Metrics
    """This engine's Prometheus metrics."""
    transports: Transports
    signals: Signals
    """Wake-up signals for the scheduler, the dispatcher and long-polling workers."""
    loops: Loops
    """The background loops, each reporting progress through its pulse."""

    def seconds_ago(self, seconds: float) -> datetime:
        """``now - seconds`` on the clock."""
        return self.clock.now() - timedelta(seconds=seconds)
