"""Offline chat models for tests and examples: scripted or reactive, with tool calling.

langchain-core's fake chat models return tool calls but cannot ``bind_tools`` (and cycle or stop
silently at the end of their script). :class:`ScriptedChatModel` can: each model call takes the
next step of ``steps``, or asks ``policy`` once the steps are used up. A step is an
:class:`AIMessage`, a string (a final answer), an exception (raised, as a provider error would
be) or a callable ``(messages) -> AIMessage | str`` that may be async (to "think" for a while).
With neither left it raises :class:`ScriptExhausted`.

Build steps with :func:`calls` (one or more tool calls) and :func:`answer` (a final answer).
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from cueflow.agents.answers import task_from_text

_ids = itertools.count(1)


class ScriptExhausted(RuntimeError):
    """The scripted model was called more often than its script allows."""


def calls(*tool_calls: tuple[str, dict[str, Any]]) -> AIMessage:
    """An assistant message calling tools: ``calls(("report_outcome", {...}), ...)``."""
    return AIMessage(
        content="",
        tool_calls=[
            {"name": name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}
            for name, args in tool_calls
        ],
    )


def answer(text: str | None = None, **outcome: Any) -> AIMessage:
    """A final answer: ``text``, or the JSON object of ``outcome`` (``success=True, ...``)."""
    return AIMessage(content=text if text is not None else json.dumps(outcome))


def task_of(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The task an agent loop handed over: ``execution_id``, ``cue_name``, ``task``,
    ``attempt``, ``payload``."""
    first = next(m for m in messages if isinstance(m, HumanMessage))
    return task_from_text(first.text)


def tool_results(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The tool replies since the model's last message."""
    found: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        found.append(message)
    return found[::-1]


class ScriptedChatModel(BaseChatModel):
    """A tool-calling fake chat model driven by a script and/or a policy."""

    steps: list[Any] = Field(default_factory=list)
    """Steps taken in order, one per model call."""
    policy: Callable[[list[BaseMessage]], Any] | None = None
    """Asked for a step (or a message) once ``steps`` is used up."""
    calls: int = 0
    """Model calls so far."""
    bound_tools: list[str] = Field(default_factory=list)
    """Names of the tools last bound."""

    @property
    def _llm_type(self) -> str:
        return "cueflow-scripted"

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Record the tools' schemas (as a provider would receive them) and bind them."""
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        self.bound_tools = [schema["function"]["name"] for schema in schemas]
        return self.bind(tools=schemas, **kwargs)

    def _step(self) -> Any:
        self.calls += 1
        if self.steps:
            return self.steps.pop(0)
        if self.policy is not None:
            return self.policy
        raise ScriptExhausted(f"the script has no step for model call {self.calls}")

    @staticmethod
    def _result(step: Any) -> ChatResult:
        if isinstance(step, str):
            step = AIMessage(content=step)
        if not isinstance(step, AIMessage):
            raise TypeError(f"a step must give an AIMessage or a string, not {step!r}")
        return ChatResult(generations=[ChatGeneration(message=step)])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        step = self._step()
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            step = step(messages)
            if inspect.isawaitable(step):
                step = await step
        return self._result(step)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        step = self._step()
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            step = step(messages)
            if inspect.isawaitable(step):
                raise TypeError("async steps need ainvoke")
        return self._result(step)
