""":class:`ExecutionRun`: what became of an execution the agent loop took, and the last word
on it: the outcome reported (unless a tool already did), the claim released or found lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cueflow.agents.client import JSON
from cueflow.agents.session import ToolFailure, WorkerSession

log = logging.getLogger(__name__)

Say = Callable[[str], object]
"""Where the loop tells what happens, a line at a time."""


@dataclass
class ExecutionRun:
    """What the loop did with one execution."""

    execution_id: str
    status: Literal["succeeded", "failed", "released", "lost"]
    """``succeeded``/``failed``: the outcome reported; ``released``: given back unfinished;
    ``lost``: the claim was lost before an outcome could be reported."""
    detail: str | None
    """The result, the error or why it was released or lost."""
    steps: int
    """Model calls made."""


async def finish(
    session: WorkerSession,
    execution_id: str,
    report: JSON | None,
    reason: str | None,
    steps: int,
    say: Say | None,
) -> ExecutionRun:
    """Report the outcome unless a tool already did, and say what became of the execution."""
    if session.holds(execution_id):
        if reason is not None or report is None:
            report = {"success": False, "error": (reason or "no outcome")[:2000]}
        try:
            await session.report(execution_id, report)
        except ToolFailure as exc:
            narrate(say, execution_id, f"could not report: {exc}")
            return ExecutionRun(execution_id, "lost", str(exc), steps)
    if execution_id in session.reported:
        sent = session.reported[execution_id][0]
        status: Literal["succeeded", "failed"] = "succeeded" if sent["success"] else "failed"
        detail = sent.get("result") if sent["success"] else sent.get("error")
        if detail is None and sent.get("output") is not None:
            detail = f"output {json.dumps(sent['output'], ensure_ascii=False, default=str)[:500]}"
        narrate(say, execution_id, f"{status}: {detail}")
        return ExecutionRun(execution_id, status, detail, steps)
    if execution_id in session.lost:
        why = f"claim lost [{session.lost[execution_id]}]"
        narrate(say, execution_id, why)
        return ExecutionRun(execution_id, "lost", why, steps)
    narrate(say, execution_id, f"released: {reason}" if reason else "released")
    return ExecutionRun(execution_id, "released", reason, steps)


async def release_quietly(
    session: WorkerSession, execution_id: str, reason: str, retry_after: float | None = None
) -> None:
    """Give the execution back if it is still held; a release that fails is only logged."""
    if session.holds(execution_id):
        try:
            await session.release(execution_id, reason, retry_after)
        except ToolFailure as exc:
            log.warning("could not release %s: %s", execution_id, exc)


def narrate(say: Say | None, execution_id: str, text: str) -> None:
    """Tell ``say`` (if any) ``text``, prefixed with the execution's short id."""
    if say is not None:
        say(f"[{execution_id[:8]}] {text}")
