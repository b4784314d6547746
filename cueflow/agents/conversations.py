""":class:`Conversations`: an agent's conversation per execution, kept in a LangGraph
checkpoint saver so that an attempt interrupted by a crash resumes instead of starting over.

What survives a crash: the messages as of the last completed step (the system prompt, the task,
every model reply and every tool result), under the thread id ``execution_id``. What does not:
a tool call in flight at the crash (its result is unknown; the resumed model is told so and
should check before repeating it), the claim itself (the next attempt is a new claim, counted in
``attempts``), and anything the model kept outside the conversation. The conversation is
deleted once an outcome is recorded.

Any ``BaseCheckpointSaver`` works (``InMemorySaver``, ``SqliteSaver``, ``PostgresSaver``...);
only its ``aget_tuple``/``aput``/``adelete_thread`` and ``get_next_version`` are used, so
cueflow does not depend on langgraph.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

_seq = itertools.count()


def _checkpoint_id() -> str:
    """An id that sorts after every earlier one (savers take the greatest as the latest)."""
    value = (time.time_ns() << 20 | next(_seq) & 0xFFFFF) & ((1 << 128) - 1)
    return str(uuid.UUID(int=value))


class Conversations:
    """Conversations keyed by execution id in ``saver``."""

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self._versions: dict[str, Any] = {}

    @staticmethod
    def _config(execution_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": execution_id, "checkpoint_ns": ""}}

    async def resume(
        self, execution_id: str, fresh: list[BaseMessage], attempt: int
    ) -> list[BaseMessage]:
        """The saved conversation of ``execution_id`` continued for attempt ``attempt``, or
        ``fresh`` when none is saved."""
        found = await self.saver.aget_tuple(self._config(execution_id))
        saved = found.checkpoint["channel_values"].get("messages") if found else None
        if not saved:
            return fresh
        self._versions[execution_id] = found.checkpoint["channel_versions"].get("messages")
        messages = list(saved)
        answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        last = messages[-1]
        if isinstance(last, AIMessage):
            for call in last.tool_calls:
                if call.get("id") not in answered:
                    messages.append(
                        ToolMessage(
                            "interrupted: the worker stopped before this call's result was "
                            "recorded; check whether it took effect before repeating it",
                            tool_call_id=call.get("id") or "interrupted",
                            status="error",
                        )
                    )
        messages.append(
            HumanMessage(
                f"The worker restarted; this is attempt {attempt} of the same execution. "
                "Continue from where the conversation above left off."
            )
        )
        return messages

    async def save(self, execution_id: str, messages: list[BaseMessage]) -> None:
        """Save the conversation as it is now."""
        version = self.saver.get_next_version(self._versions.get(execution_id), None)
        self._versions[execution_id] = version
        checkpoint = {
            "v": 1,
            "id": _checkpoint_id(),
            "ts": datetime.now(UTC).isoformat(),
            "channel_values": {"messages": list(messages)},
            "channel_versions": {"messages": version},
            "versions_seen": {},
            "pending_sends": [],
            "updated_channels": ["messages"],
        }
        metadata = {"source": "cueflow", "step": len(messages), "parents": {}}
        await self.saver.aput(
            self._config(execution_id), checkpoint, metadata, {"messages": version}
        )

    async def forget(self, execution_id: str) -> None:
        """Delete the conversation of a finished execution."""
        self._versions.pop(execution_id, None)
        delete = getattr(self.saver, "adelete_thread", None)
        if delete is not None:
            await delete(execution_id)
