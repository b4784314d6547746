"""What a transport is to the engine.

A transport decides how an execution reaches whoever runs it. A *pull* transport (``worker``)
leaves executions in the queue for workers to claim over the API; the engine handles claims,
leases and outcomes for every pull transport alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cueflow.engine import Engine


class Transport(Protocol):
    """A delivery method, registered by a plugin under ``name``."""

    name: str
    """The value of a cue's ``transport`` field that selects this transport."""
    pull: bool
    """``True`` when workers claim executions through the API."""

    def validate_cue(self, cue: Mapping[str, Any]) -> None:
        """Check a cue about to be created or changed (its store values); raise a
        :class:`cueflow.errors.CueflowError` to refuse it."""

    async def start(self, engine: Engine) -> None:
        """Called when the engine starts."""

    async def stop(self) -> None:
        """Called when the engine stops."""


class PullTransport:
    """Base for transports whose executions wait for workers to claim them."""

    pull = True

    def __init__(self, name: str) -> None:
        self.name = name

    def validate_cue(self, cue: Mapping[str, Any]) -> None:
        """Any cue can be pulled."""

    async def start(self, engine: Engine) -> None:
        """Nothing to start: the engine serves claims."""

    async def stop(self) -> None:
        """Nothing to stop."""
