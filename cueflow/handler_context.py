"""What an in-process handler receives besides the payload: part of the embedding API.

Handlers are registered with :meth:`cueflow.Engine.handler`; one that takes a second positional
parameter without a default value receives a :class:`HandlerContext`::

    from cueflow import HandlerContext

    @engine.handler("sync-crm")
    async def sync_crm(payload: dict, context: HandlerContext) -> None: ...

It lives in the core, not in the ``cueflow_inprocess`` plugin that runs handlers, so that
applications import the embedding API from ``cueflow`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HandlerContext:
    """What a handler taking a second positional parameter receives besides the payload."""

    execution_id: str
    """The same for every attempt of one run: the key to make a handler idempotent."""
    cue_id: str
    cue_name: str
    task: str
    scheduled_for: datetime
    """The time this run was due (aware, UTC)."""
    attempt: int
    """1 for the first attempt, then 2, 3 ... up to the cue's ``retry.max_attempts``."""
