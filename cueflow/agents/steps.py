""":func:`converse`: the model's steps on one execution, model calls and the tool calls they
make, until the outcome.

The outcome is taken from the ``report_outcome`` tool call that ends the run; a model that
answers in text instead has the (fenced or embedded) JSON object of its answer read field by
field, and a text that states no outcome is never a success: the model is asked once more, with
the reason and ``report_outcome`` required (``tool_choice``) where the model supports it, and
the execution fails if that answer cannot be read either. Tool calls run one at a time, each
answered, and the lease is heartbeaten before and after every model call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from cueflow.agents.answers import UnreadableAnswer, ask_again, outcome_from_answer
from cueflow.agents.client import JSON
from cueflow.agents.conversations import Conversations
from cueflow.agents.runs import Say, narrate
from cueflow.agents.session import WorkerSession

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far an attempt got: model calls made and tools called."""

    steps: int = 0
    tools: list[str] = field(default_factory=list)
    """The tools called successfully so far (what the attempt got done)."""


class StepsExhausted(Exception):
    """The model made ``max_steps`` calls without a final answer."""


class LeaseLost(Exception):
    """Another worker holds the execution now."""


def _forced(model: BaseChatModel, tools: list[BaseTool], name: str) -> Runnable[Any, Any] | None:
    """``model`` with ``tools`` bound and the tool ``name`` required, if the model can."""
    try:
        return model.bind_tools(tools, tool_choice=name)
    except (NotImplementedError, TypeError, ValueError):
        return None


async def converse(
    model: BaseChatModel,
    tools: list[BaseTool],
    messages: list[BaseMessage],
    session: WorkerSession,
    execution_id: str,
    max_steps: int,
    progress: Progress,
    say: Say | None,
    saved: Conversations | None,
    *,
    step_output: bool = False,
) -> JSON | None:
    """Model calls and tool calls until a final answer (whose outcome is returned), until a
    tool reported or released the execution (``None``), or until ``max_steps`` model calls were
    made. An answer that states no outcome is asked about once more, then is a failure. With
    ``step_output`` (a flow step) a final JSON answer without ``success`` is the step's
    output."""
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
                report, dropped = outcome_from_answer(ai.text, step_output=step_output)
            except UnreadableAnswer as exc:
                if asked_again:
                    error = f"the model's final answer states no outcome: {exc}"
                    return {"success": False, "error": error}
                asked_again = True
                narrate(say, execution_id, f"unreadable answer ({exc}): asking again")
                messages.append(HumanMessage(ask_again(str(exc), report_tool)))
                llm = _forced(model, tools, report_tool) or llm
                continue
            if dropped:
                narrate(say, execution_id, f"invalid outcome fields dropped: {', '.join(dropped)}")
            return report
        for call in ai.tool_calls:
            reply = await _call_tool(by_name, call)
            if reply.status != "error":
                progress.tools.append(call["name"])
            narrate(say, execution_id, f"{call['name']}({call['args']}) -> {reply.text[:160]}")
            messages.append(reply)
        for bad in ai.invalid_tool_calls:
            error = f"invalid tool call: {bad.get('error') or 'the arguments are not valid JSON'}"
            narrate(say, execution_id, f"{bad.get('name')}: {error}")
            messages.append(
                ToolMessage(error, tool_call_id=bad.get("id") or "invalid", status="error")
            )
        if not session.holds(execution_id):
            return None
        if saved is not None:
            await saved.save(execution_id, messages)
    raise StepsExhausted


async def _keep(session: WorkerSession, execution_id: str) -> None:
    """Heartbeat the lease; :class:`LeaseLost` if another worker has it now."""
    if not await session.heartbeat(execution_id) and execution_id in session.lost:
        raise LeaseLost


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
