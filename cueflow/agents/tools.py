"""The agent tools, written once and framework-free: names, descriptions for models, argument
models and what each does with a :class:`~cueflow.agents.session.WorkerSession`.

:mod:`cueflow.agents.langchain` turns them into langchain-core tools and
:mod:`cueflow.agents.mcp_server` into MCP tools. Every tool answers with a JSON object (a dict
of JSON values); refusals raise :class:`~cueflow.agents.session.ToolFailure`.

* Worker tools (always): ``poll_executions``, ``claim_execution``, ``report_outcome``,
  ``release_execution``, ``get_execution``.
* Management tools (opt-in): ``list_cues``, ``get_cue``, ``create_cue``, ``pause_cue``,
  ``resume_cue``, ``list_executions``, ``schedule_followup``, and for flows ``list_flows``,
  ``start_flow_run``, ``get_flow_run``, ``send_flow_event``; ``delete_cue`` only with
  ``allow_destructive``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from cueflow.agents.client import JSON, ClientError, validation_message
from cueflow.agents.schemas import (
    ClaimArgs,
    CreateCueArgs,
    CueIdArgs,
    ExecutionArgs,
    FlowEventArgs,
    FlowRunArgs,
    FollowUpArgs,
    ListCuesArgs,
    ListExecutionsArgs,
    ListFlowsArgs,
    PollArgs,
    ReleaseArgs,
    ReportOutcomeArgs,
    StartFlowRunArgs,
    ToolArgs,
)
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.states import CueStatus

Group = Literal["worker", "manage", "destructive"]


@dataclass(frozen=True)
class ToolSpec:
    """One agent tool."""

    name: str
    description: str
    args: type[ToolArgs]
    run: Callable[[WorkerSession, Any], Awaitable[JSON]]
    group: Group = "worker"
    read_only: bool = False


async def invoke(
    spec: ToolSpec, session: WorkerSession, arguments: dict[str, Any], only: str | None = None
) -> JSON:
    """Validate ``arguments`` and run ``spec``. ``only`` confines tools that take an
    ``execution_id`` to that one execution (an agent loop's current task)."""
    try:
        args = spec.args.model_validate(arguments)
    except ValidationError as exc:
        raise ToolFailure(f"invalid arguments: {validation_message(exc)}") from exc
    execution_id = getattr(args, "execution_id", None)
    if only is not None and execution_id is not None and execution_id != only:
        raise ToolFailure(f"this task is execution {only}; use that execution_id")
    try:
        return await spec.run(session, args)
    except ClientError as exc:  # management calls go to the client directly
        raise ToolFailure(f"{exc.message} [{exc.code}]") from exc


def select_tools(
    *, include_management: bool = False, allow_destructive: bool = False
) -> list[ToolSpec]:
    """The worker tools, plus the management tools when asked for, and ``delete_cue`` when
    destructive ones are allowed too."""
    groups = {"worker"}
    if include_management:
        groups.add("manage")
        if allow_destructive:
            groups.add("destructive")
    return [spec for spec in TOOLS if spec.group in groups]


# worker tools -----------------------------------------------------------------------------------
async def _poll(session: WorkerSession, args: PollArgs) -> JSON:
    items = await session.poll(args.limit)
    return {"executions": items, "count": len(items)}


async def _claim(session: WorkerSession, args: ClaimArgs) -> JSON:
    lease, already = await session.claim(args.execution_id)
    return {"claimed": True, "already_held": already, **session.describe(lease)}


async def _report(session: WorkerSession, args: ReportOutcomeArgs) -> JSON:
    answer, duplicate = await session.report(args.execution_id, args.report())
    return {
        "execution_id": args.execution_id,
        "recorded": True,
        "duplicate": duplicate,
        "outcome_state": answer.get("outcome_state"),
    }


async def _release(session: WorkerSession, args: ReleaseArgs) -> JSON:
    answer = await session.release(args.execution_id, args.reason, args.retry_after_seconds)
    result = {
        "execution_id": args.execution_id,
        "released": bool(answer.get("released", True)),
        "status": answer.get("status"),
        "next_attempt_at": answer.get("next_attempt_at"),
    }
    if not result["released"]:
        result["note"] = "the server cannot release claims; it was recorded as a failure"
    return result


async def _get_execution(session: WorkerSession, args: ExecutionArgs) -> JSON:
    return await session.get(args.execution_id)


# management tools -------------------------------------------------------------------------------
def _cue_view(cue: JSON) -> JSON:
    """A cue (or a flow step) as a model sees it: callback header values (credentials) are
    hidden."""
    callback = cue.get("callback")
    if isinstance(callback, dict) and callback.get("headers"):
        hidden = dict.fromkeys(callback["headers"], "***")
        cue = {**cue, "callback": {**callback, "headers": hidden}}
    return cue


def _flow_view(flow: JSON) -> JSON:
    """A flow as a model sees it: its webhook steps' header values hidden."""
    steps = flow.get("steps")
    if not isinstance(steps, list):
        return flow
    return {**flow, "steps": [_cue_view(s) if isinstance(s, dict) else s for s in steps]}


async def _list_cues(session: WorkerSession, args: ListCuesArgs) -> JSON:
    page = await session.client.list_cues(status=args.status, limit=args.limit, offset=args.offset)
    return {**page, "cues": [_cue_view(cue) for cue in page.get("cues", [])]}


async def _get_cue(session: WorkerSession, args: CueIdArgs) -> JSON:
    return _cue_view(await session.client.get_cue(args.cue_id))


async def _create_cue(session: WorkerSession, args: CreateCueArgs) -> JSON:
    return _cue_view(await session.client.create_cue(args.body()))


async def _pause_cue(session: WorkerSession, args: CueIdArgs) -> JSON:
    patch = {"status": CueStatus.PAUSED.value}
    return _cue_view(await session.client.update_cue(args.cue_id, patch))


async def _resume_cue(session: WorkerSession, args: CueIdArgs) -> JSON:
    patch = {"status": CueStatus.ACTIVE.value}
    return _cue_view(await session.client.update_cue(args.cue_id, patch))


async def _list_executions(session: WorkerSession, args: ListExecutionsArgs) -> JSON:
    return await session.client.list_executions(
        cue_id=args.cue_id, status=args.status, limit=args.limit, offset=args.offset
    )


async def _follow_up(session: WorkerSession, args: FollowUpArgs) -> JSON:
    run = await session.client.fire_cue(args.cue_id, args.body())
    return {"scheduled": True, "execution_id": run.get("id"), **run}


async def _list_flows(session: WorkerSession, args: ListFlowsArgs) -> JSON:
    page = await session.client.list_flows(limit=args.limit, offset=args.offset)
    return {**page, "flows": [_flow_view(flow) for flow in page.get("flows", [])]}


async def _start_flow_run(session: WorkerSession, args: StartFlowRunArgs) -> JSON:
    return await session.client.start_flow_run(args.flow_id, args.body())


async def _get_flow_run(session: WorkerSession, args: FlowRunArgs) -> JSON:
    return await session.client.get_flow_run(args.run_id)


async def _send_flow_event(session: WorkerSession, args: FlowEventArgs) -> JSON:
    return await session.client.send_flow_event(args.run_id, args.event, args.data)


async def _delete_cue(session: WorkerSession, args: CueIdArgs) -> JSON:
    await session.client.delete_cue(args.cue_id)
    return {"cue_id": args.cue_id, "deleted": True}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "poll_executions",
        "List executions that are due and waiting for a worker, oldest first, with their "
        "execution_id, cue name, task, attempt and payload. Read-only.",
        PollArgs,
        _poll,
        read_only=True,
    ),
    ToolSpec(
        "claim_execution",
        "Claim an execution so that only you work on it (leave out execution_id to take the "
        "oldest). Returns its payload: the work to do. Finish with report_outcome, or give it "
        "back with release_execution.",
        ClaimArgs,
        _claim,
    ),
    ToolSpec(
        "report_outcome",
        "Record how a claimed execution went, once: success true with a result (and evidence "
        "such as external_id, result_url, summary), or success false with an error. An outcome "
        "cannot be changed afterwards.",
        ReportOutcomeArgs,
        _report,
    ),
    ToolSpec(
        "release_execution",
        "Give a claimed execution back unfinished, with the reason, so it is tried again later. "
        "To record that the work failed, use report_outcome with success false instead.",
        ReleaseArgs,
        _release,
    ),
    ToolSpec(
        "get_execution",
        "Look up one execution: its status, attempts and outcome. Read-only.",
        ExecutionArgs,
        _get_execution,
        read_only=True,
    ),
    ToolSpec(
        "list_cues",
        "List your cues (schedules), newest first. Read-only.",
        ListCuesArgs,
        _list_cues,
        "manage",
        read_only=True,
    ),
    ToolSpec(
        "get_cue", "Look up one cue. Read-only.", CueIdArgs, _get_cue, "manage", read_only=True
    ),
    ToolSpec(
        "create_cue",
        "Schedule work: a cue fires on a cron (in a timezone), once at a time, or every N "
        "seconds, and each fire creates an execution with the payload for a worker (or a "
        "webhook call).",
        CreateCueArgs,
        _create_cue,
        "manage",
    ),
    ToolSpec("pause_cue", "Pause a cue: it stops firing.", CueIdArgs, _pause_cue, "manage"),
    ToolSpec("resume_cue", "Resume a paused cue.", CueIdArgs, _resume_cue, "manage"),
    ToolSpec(
        "list_executions",
        "List executions (newest first), optionally of one cue or in one status. Read-only.",
        ListExecutionsArgs,
        _list_executions,
        "manage",
        read_only=True,
    ),
    ToolSpec(
        "schedule_followup",
        "Schedule a follow-up run of a cue: now, or at send_at, with a payload for that one run "
        "(replacing the cue's) when given. Returns the new execution.",
        FollowUpArgs,
        _follow_up,
        "manage",
    ),
    ToolSpec(
        "list_flows",
        "List your flows (multi-step workflows: named steps that hand their outputs on), "
        "newest first, with their steps. Read-only.",
        ListFlowsArgs,
        _list_flows,
        "manage",
        read_only=True,
    ),
    ToolSpec(
        "start_flow_run",
        "Start a run of a flow with an input. Returns the run: its id, status and the status "
        "of each step. The same idempotency_key again returns that run instead of a new one.",
        StartFlowRunArgs,
        _start_flow_run,
        "manage",
    ),
    ToolSpec(
        "get_flow_run",
        "Look up a flow run: its status (pending, running, waiting, succeeded, failed, "
        "cancelled) and each step's status, attempts, output and error. Read-only.",
        FlowRunArgs,
        _get_flow_run,
        "manage",
        read_only=True,
    ),
    ToolSpec(
        "send_flow_event",
        "Send an event to a flow run (say 'approved'): it resumes the run's wait steps "
        "waiting for that event, data becoming their output. Returns the steps it resumed.",
        FlowEventArgs,
        _send_flow_event,
        "manage",
    ),
    ToolSpec(
        "delete_cue",
        "Delete a cue and all its executions. Irreversible.",
        CueIdArgs,
        _delete_cue,
        "destructive",
    ),
)
"""Every tool, worker tools first."""

TOOL_NAMES = tuple(spec.name for spec in TOOLS)
