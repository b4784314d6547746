""":func:`run_agent_worker`: a langchain-core chat model as a cueflow worker.

The loop does what a worker process does, and the model does the work: it registers as a worker,
polls and claims an execution, hands the payload to the model as the task (with the previous
attempt's failure on a retry), runs the tool calls the model makes (one at a time, each
answered), heartbeats the lease before and after every model call while the session's keepalive
task covers long calls, and records the outcome.

The outcome is taken from the ``report_outcome`` tool call that ends the run; a model that
answers in text instead has the (fenced or embedded) JSON object of its answer read field by
field, and a text that states no outcome is never a success: the model is asked once more, with
the reason and ``report_outcome`` required (``tool_choice``) where the model supports it, and
the execution fails if that answer cannot be read either.

A transient model error (rate limit, a 5xx, a connection error) gives the execution back to be
retried after the provider's ``Retry-After`` or the cue's retry backoff, like
``release_execution``; any other model error, a timeout or running out of steps is reported as
a failure with the reason; a loop that is stopped (cancelled) releases what it holds.

With a ``checkpointer`` (a LangGraph checkpoint saver: ``InMemorySaver``, ``SqliteSaver``...)
the conversation of each execution is saved after every step under its execution id, and an
attempt that starts after a crash resumes it. Nothing but langchain-core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from cueflow.agents.answers import (
    SYSTEM_PROMPT,
    UnreadableAnswer,
    ask_again,
    outcome_from_answer,
    task_text,
)
from cueflow.agents.client import JSON, WorkerClient
from cueflow.agents.conversations import Conversations
from cueflow.agents.langchain import CueflowToolkit
from cueflow.agents.session import Lease, ToolFailure, WorkerSession

log = logging.getLogger(__name__)

Say = Callable[[str], object]


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


@dataclass
class _Progress:
    steps: int = 0
    tools: list[str] = field(default_factory=list)
    """The tools called successfully so far (what the attempt got done)."""


class _StepsExhausted(Exception):
    pass


class _LeaseLost(Exception):
    pass


_TRANSIENT = {
    "APIConnectionError",
    "APITimeoutError",
    "RateLimitError",
    "InternalServerError",
    "ModelAPIError",
    "ModelConnectionError",
    "ModelRateLimitError",
    "ModelTimeoutError",
}
"""Provider errors (by class name, so no provider package is imported) worth a later retry."""


def transient_delay(exc: BaseException) -> tuple[bool, float | None]:
    """Whether a model error is transient (a rate limit, a 5xx, a connection failure), and the
    ``Retry-After`` the provider asked for, in seconds, if any."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    transient = bool(names & _TRANSIENT) or (
        isinstance(status, int) and (status in (408, 429) or status >= 500)
    )
    if not transient:
        return False, None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    for key, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is not None:
            try:
                return True, max(0.0, float(value) / scale)
            except ValueError:
                continue  # an HTTP date: leave it to the cue's backoff
    return True, None


def _toolkit(
    worker: WorkerClient | WorkerSession | CueflowToolkit, task: str | None, n: int
) -> CueflowToolkit:
    """The toolkit the loop works through, holding at most ``n`` claims."""
    if isinstance(worker, CueflowToolkit):
        toolkit = worker
    elif isinstance(worker, WorkerSession):
        toolkit = CueflowToolkit(session=worker)
    else:
        toolkit = CueflowToolkit(session=WorkerSession(worker, task=task))
    toolkit.session.max_claims = n
    return toolkit


async def run_agent_worker(
    model: BaseChatModel,
    worker: WorkerClient | WorkerSession | CueflowToolkit,
    *,
    tools: Sequence[BaseTool] = (),
    instructions: str | None = None,
    task: str | None = None,
    concurrency: int = 1,
    max_steps: int = 20,
    execution_timeout: float | None = 600.0,
    max_executions: int | None = None,
    until_idle: bool = False,
    poll_seconds: float = 5.0,
    say: Say | None = None,
    checkpointer: Any = None,
) -> list[ExecutionRun]:
    """Run ``model`` (any langchain-core chat model with ``bind_tools``) as a worker.

    ``worker`` is a :class:`~cueflow.agents.client.WorkerClient` (an embedded engine's or an
    HTTP one), a :class:`WorkerSession` or a :class:`CueflowToolkit`. For each execution the
    model gets ``report_outcome``, ``release_execution`` and ``get_execution`` (confined to that
    execution) plus ``tools``; the system prompt is :data:`SYSTEM_PROMPT` followed by
    ``instructions``. ``task`` only takes executions of that ``payload.task``.
    ``concurrency`` executions run at once (claims held at once); each gets ``max_steps``
    model calls and ``execution_timeout`` seconds. The loop runs until cancelled, until
    ``max_executions`` were taken, or (``until_idle``) until nothing is claimable, polling every
    ``poll_seconds`` meanwhile; ``say`` receives a line for each thing that happens.
    ``checkpointer`` (a LangGraph checkpoint saver) keeps each execution's conversation, keyed
    by execution id, so that an attempt after a crash resumes it. Returns what happened to each
    execution taken.
    """
    toolkit = _toolkit(worker, task, max(1, concurrency))
    system = SYSTEM_PROMPT + (f"\n\n{instructions}" if instructions else "")
    runs: list[ExecutionRun] = []
    running: set[asyncio.Task[ExecutionRun]] = set()

    saved = Conversations(checkpointer) if checkpointer is not None else None

    async def work(lease: Lease) -> ExecutionRun:
        return await _work(
            model, toolkit, lease, tools, system, max_steps, execution_timeout, say, saved
        )

    async with toolkit:
        try:
            taken = 0
            while max_executions is None or taken < max_executions:
                while len(running) >= concurrency:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    runs.extend(t.result() for t in done)
                wait = 0.0 if until_idle else poll_seconds
                started = time.monotonic()
                lease = await _claim_next(toolkit.session, wait)
                if lease is None:
                    if until_idle:
                        break
                    # A server that long-polls has waited already; sleep out the rest.
                    await asyncio.sleep(max(0.0, poll_seconds - (time.monotonic() - started)))
                    continue
                taken += 1
                running.add(asyncio.create_task(work(lease)))
            runs.extend(await asyncio.gather(*running))
            running.clear()
        finally:
            for pending in running:
                pending.cancel()
            await asyncio.gather(*running, return_exceptions=True)
    return runs


async def _claim_next(session: WorkerSession, wait: float = 0) -> Lease | None:
    try:
        return await session.claim_next(wait=wait)
    except ToolFailure as exc:  # the server is unreachable, say: poll again later
        log.warning("claiming failed: %s", exc)
        return None


async def _work(
    model: BaseChatModel,
    toolkit: CueflowToolkit,
    lease: Lease,
    extra: Sequence[BaseTool],
    system: str,
    max_steps: int,
    timeout: float | None,
    say: Say | None,
    saved: Conversations | None,
) -> ExecutionRun:
    session = toolkit.session
    execution_id = lease.execution_id
    task = await _task(session, lease)
    _say(say, execution_id, f"claimed ({task.get('cue_name')}): payload {task.get('payload')}")
    tools = [*toolkit.task_tools(execution_id), *extra]
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(task_text(task))]
    if saved is not None:
        messages = await saved.resume(execution_id, messages, task["attempt"])
    report: JSON | None = None
    reason: str | None = None
    progress = _Progress()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            report = await _converse(
                model, tools, messages, session, execution_id, max_steps, progress, say, saved
            )
    except asyncio.CancelledError:
        await _release_quietly(session, execution_id, "worker stopped")
        raise
    except _LeaseLost:
        pass
    except _StepsExhausted:
        reason = f"ran out of steps ({max_steps}) without a final answer"
    except Exception as exc:
        if deadline.expired():
            reason = f"timed out after {timeout:g} s"
        else:
            reason = f"model error: {type(exc).__name__}: {exc}"
            log.warning("model error on %s", execution_id, exc_info=True)
            transient, retry_after = transient_delay(exc)
            if transient:
                done = ", ".join(progress.tools) or "none"
                why = f"{reason[:300]} (after {progress.steps} model call(s); tools called: {done})"
                await _release_quietly(session, execution_id, why[:500], retry_after)
    run = await _finish(session, execution_id, report, reason, progress.steps, say)
    if saved is not None and run.status in ("succeeded", "failed"):
        await saved.forget(execution_id)
    return run


async def _task(session: WorkerSession, lease: Lease) -> dict[str, Any]:
    """The task handed to the model; on a retry with what became of the attempt before."""
    task = session.describe(lease)
    if task["attempt"] > 1:
        try:
            earlier = await session.get(lease.execution_id)
        except ToolFailure:
            earlier = {}
        if earlier.get("error_message"):
            task["previous_attempt"] = {
                "attempt": task["attempt"] - 1,
                "failure": earlier["error_message"],
            }
    return task


def _forced(model: BaseChatModel, tools: list[BaseTool], name: str) -> Runnable[Any, Any] | None:
    """``model`` with ``tools`` bound and the tool ``name`` required, if the model can."""
    try:
        return model.bind_tools(tools, tool_choice=name)
    except (NotImplementedError, TypeError, ValueError):
        return None


async def _converse(
    model: BaseChatModel,
    tools: list[BaseTool],
    messages: list[BaseMessage],
    session: WorkerSession,
    execution_id: str,
    max_steps: int,
    progress: _Progress,
    say: Say | None,
    saved: Conversations | None,
) -> JSON | None:
    """Model calls and tool calls until a final answer (whose outcome is returned), until a
    tool reported or released the execution (``None``), or until ``max_steps`` model calls were
    made. An answer that states no outcome is asked about once more, then is a failure."""
    by_name = {tool.name: tool for tool in tools}
    report_tool = next(name for name in by_name if name.endswith("report_outcome"))
    llm: Runnable[Any, Any] = model.bind_tools(tools)
    asked_again = False
    while progress.steps < max_steps:
        await _keep(session, execution_id)
        ai = await llm.ainvoke(messages)
        progress.steps += 1
        await _keep(session, execution_id)
        if not isinstance(ai, AIMessage):
            ai = AIMessage(content=getattr(ai, "content", str(ai)))
        messages.append(ai)
        if not ai.tool_calls and not ai.invalid_tool_calls:
            try:
                report, dropped = outcome_from_answer(ai.text)
            except UnreadableAnswer as exc:
                if asked_again:
                    error = f"the model's final answer states no outcome: {exc}"
                    return {"success": False, "error": error}
                asked_again = True
                _say(say, execution_id, f"unreadable answer ({exc}): asking again")
                messages.append(HumanMessage(ask_again(str(exc), report_tool)))
                llm = _forced(model, tools, report_tool) or llm
                continue
            if dropped:
                _say(say, execution_id, f"invalid outcome fields dropped: {', '.join(dropped)}")
            return report
        for call in ai.tool_calls:
            reply = await _call_tool(by_name, call)
            if reply.status != "error":
                progress.tools.append(call["name"])
            _say(say, execution_id, f"{call['name']}({call['args']}) -> {reply.text[:160]}")
            messages.append(reply)
        for bad in ai.invalid_tool_calls:
            error = f"invalid tool call: {bad.get('error') or 'the arguments are not valid JSON'}"
            _say(say, execution_id, f"{bad.get('name')}: {error}")
            messages.append(
                ToolMessage(error, tool_call_id=bad.get("id") or "invalid", status="error")
            )
        if not session.holds(execution_id):
            return None
        if saved is not None:
            await saved.save(execution_id, messages)
    raise _StepsExhausted


async def _keep(session: WorkerSession, execution_id: str) -> None:
    """Heartbeat the lease; :class:`_LeaseLost` if another worker has it now."""
    if not await session.heartbeat(execution_id) and execution_id in session.lost:
        raise _LeaseLost


async def _call_tool(by_name: dict[str, BaseTool], call: ToolCall) -> ToolMessage:
    call_id = call.get("id") or f"call_{call['name']}"
    tool = by_name.get(call["name"])
    if tool is None:
        known = ", ".join(sorted(by_name))
        return ToolMessage(
            f"unknown tool {call['name']!r}; the tools are: {known}",
            tool_call_id=call_id,
            status="error",
        )
    try:
        reply = await tool.ainvoke({**call, "id": call_id, "type": "tool_call"})
    except Exception as exc:  # an unexpected crash: the model hears of it, the loop goes on
        log.exception("tool %s failed", call["name"])
        reply = f"{call['name']} failed unexpectedly ({type(exc).__name__})"
        return ToolMessage(reply, tool_call_id=call_id, status="error")
    if isinstance(reply, ToolMessage):
        return reply
    return ToolMessage(str(reply), tool_call_id=call_id)


async def _finish(
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
            _say(say, execution_id, f"could not report: {exc}")
            return ExecutionRun(execution_id, "lost", str(exc), steps)
    if execution_id in session.reported:
        sent = session.reported[execution_id][0]
        status: Literal["succeeded", "failed"] = "succeeded" if sent["success"] else "failed"
        detail = sent.get("result") if sent["success"] else sent.get("error")
        _say(say, execution_id, f"{status}: {detail}")
        return ExecutionRun(execution_id, status, detail, steps)
    if execution_id in session.lost:
        why = f"claim lost [{session.lost[execution_id]}]"
        _say(say, execution_id, why)
        return ExecutionRun(execution_id, "lost", why, steps)
    _say(say, execution_id, f"released: {reason}" if reason else "released")
    return ExecutionRun(execution_id, "released", reason, steps)


async def _release_quietly(
    session: WorkerSession, execution_id: str, reason: str, retry_after: float | None = None
) -> None:
    if session.holds(execution_id):
        try:
            await session.release(execution_id, reason, retry_after)
        except ToolFailure as exc:
            log.warning("could not release %s: %s", execution_id, exc)


def _say(say: Say | None, execution_id: str, text: str) -> None:
    if say is not None:
        say(f"[{execution_id[:8]}] {text}")
