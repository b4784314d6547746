""":func:`run_agent_worker`: a langchain-core chat model as a cueflow worker.

The loop does what a worker process does, and the model does the work: it registers as a worker,
polls and claims an execution, hands the payload to the model as the task (with the previous
attempt's failure on a retry), lets the model work through its steps (:mod:`cueflow.agents.steps`:
tool calls, the outcome read from ``report_outcome`` or the final answer) while the session's
keepalive task covers long calls, and records the outcome (:mod:`cueflow.agents.runs`).

A transient model error (rate limit, a 5xx, a connection error:
:func:`~cueflow.agents.model_errors.transient_delay`) gives the execution back to be
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
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool

from cueflow.agents.answers import SYSTEM_PROMPT, task_text
from cueflow.agents.client import JSON, WorkerClient
from cueflow.agents.conversations import Conversations
from cueflow.agents.flow_steps import flow_of
from cueflow.agents.langchain import CueflowToolkit
from cueflow.agents.model_errors import transient_delay
from cueflow.agents.runs import ExecutionRun, Say, finish, narrate, release_quietly
from cueflow.agents.session import Lease, ToolFailure, WorkerSession
from cueflow.agents.steps import LeaseLost, Progress, StepsExhausted, converse

log = logging.getLogger(__name__)


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
    narrate(say, execution_id, f"claimed ({task.get('cue_name')}): payload {task.get('payload')}")
    tools = [*toolkit.task_tools(execution_id), *extra]
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(task_text(task))]
    if saved is not None:
        messages = await saved.resume(execution_id, messages, task["attempt"])
    report: JSON | None = None
    reason: str | None = None
    progress = Progress()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            report = await converse(
                model,
                tools,
                messages,
                session,
                execution_id,
                max_steps,
                progress,
                say,
                saved,
                step_output=flow_of(task) is not None,
            )
    except asyncio.CancelledError:
        await release_quietly(session, execution_id, "worker stopped")
        raise
    except LeaseLost:
        pass
    except StepsExhausted:
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
                await release_quietly(session, execution_id, why[:500], retry_after)
    run = await finish(session, execution_id, report, reason, progress.steps, say)
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
