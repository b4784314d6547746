"""How flows and runs read on a terminal, shared by ``cueflow flows`` and ``cueflow runs``:
JSON arguments, durations, status colours, a DAG's depths, a flow found by name or id."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from cueflow.commands.client import ApiClient, ApiError
from cueflow.commands.output import fail
from cueflow.states import StepStatus

STATUS_STYLE = {
    StepStatus.SUCCEEDED.value: "green",
    StepStatus.FAILED.value: "red",
    StepStatus.CANCELLED.value: "red",
    StepStatus.RUNNING.value: "cyan",
    StepStatus.WAITING.value: "yellow",
    StepStatus.SKIPPED.value: "dim",
    StepStatus.PENDING.value: "dim",
}


def parse_json(value: str) -> Any:
    """Any JSON value given on the command line, or ``@PATH`` for a file's JSON."""
    source = value
    if value.startswith("@"):
        try:
            source = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {value[1:]!r}: {exc.strerror}") from exc
    try:
        return json.loads(source)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not valid JSON ({exc}); quote it for the shell, like '{{\"order\": 1}}'"
        ) from exc


def duration(start: str | None, end: str | None) -> str | None:
    """The time from ``start`` to ``end`` (ISO-8601), as ``850ms``, ``12.3s``, ``4m05s`` or
    ``2h03m``; ``None`` unless both are known."""
    if not start or not end:
        return None
    seconds = (_instant(end) - _instant(start)).total_seconds()
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def status_markup(status: str) -> str:
    """A status in its colour (rich markup)."""
    return f"[{STATUS_STYLE.get(status, 'bold')}]{status}[/]"


def dag_depths(order: list[str], needs: dict[str, list[str]]) -> dict[str, int]:
    """Each step's depth in the DAG: 0 without parents, else one more than its deepest."""
    depth: dict[str, int] = {}

    def of(step: str, seen: frozenset[str]) -> int:
        if step not in depth:
            parents = [p for p in needs.get(step, []) if p in needs and p not in seen]
            depth[step] = 1 + max((of(p, seen | {step}) for p in parents), default=-1)
        return depth[step]

    for step in order:
        of(step, frozenset())
    return depth


def resolve_flow(api: ApiClient, flow: str) -> dict[str, Any]:
    """The flow with this id or name; exits 1 when there is none."""
    if flow.startswith("flw_"):
        try:
            found: dict[str, Any] = api.flows.get(flow).wire()
            return found
        except ApiError as exc:
            if exc.status != 404:
                raise
    offset = 0
    while True:
        page = api.flows.list(limit=100, offset=offset).wire()
        for candidate in page["flows"]:
            if candidate["name"] == flow:
                return dict(candidate)
        offset += len(page["flows"])
        if not page["flows"] or offset >= page["total"]:
            fail(f"no flow is named {flow!r} or has that id (`cueflow flows list` shows yours)")
