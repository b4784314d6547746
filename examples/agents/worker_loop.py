"""An LLM agent as a cueflow worker: ``run_agent_worker`` claims each due execution, hands its
payload to the model, runs the model's tool calls, keeps the lease alive and reports the outcome
from the model's final answer.

Runs offline as is: a scripted chat model stands in for the LLM, against an in-memory embedded
engine. ``python examples/agents/worker_loop.py`` (needs ``pip install 'cueflow[agents]'``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool

import cueflow
from cueflow.agents import EngineWorkerClient, run_agent_worker
from cueflow.agents.testing import ScriptedChatModel, answer, calls, task_of, tool_results

TEXTS = [
    "cueflow schedules work and agents do it",
    "leases keep two workers from doing the same job",
    "",
]


@tool
def count_words(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def scripted_model(messages: list[BaseMessage]) -> AIMessage:
    """What an LLM would do with a word-count task: call the tool, then answer in JSON."""
    payload = task_of(messages)["payload"]
    if not payload.get("text"):
        return answer(success=False, error="the payload has no text to count")
    replies = tool_results(messages)
    if not replies:
        return calls(("count_words", {"text": payload["text"]}))
    return answer(success=True, result=f"{replies[0].text} words", summary="counted")


async def main() -> None:
    model = ScriptedChatModel(policy=scripted_model)
    # A real model instead (any langchain-core chat model that supports tool calling):
    #   pip install langchain-openai            # or langchain-anthropic, langchain-ollama, ...
    #   from langchain_openai import ChatOpenAI
    #   model = ChatOpenAI(model="gpt-4o-mini")  # reads OPENAI_API_KEY
    engine = cueflow.open_engine("sqlite://")  # in memory; "sqlite:///app.db" keeps it
    async with engine:
        me = await engine.account("me@example.com")
        at = (engine.clock.now() + timedelta(seconds=1)).isoformat()
        for i, text in enumerate(TEXTS):
            await engine.create_cue(me, {
                "name": f"count-{i}", "transport": "worker",
                "schedule": {"type": "once", "at": at},
                "payload": {"task": "word-count", "text": text},
            })  # fmt: skip
        while len(await engine.claimable(me)) < len(TEXTS):  # the scheduler fires them at `at`
            await asyncio.sleep(0.1)
        print(f"{len(TEXTS)} executions due; the agent starts")
        runs = await run_agent_worker(
            model,
            EngineWorkerClient(engine, me),  # or HttpWorkerClient(url, api_key) for a server
            tools=[count_words],
            until_idle=True,  # a long-running worker leaves this out and polls forever
            say=print,
        )
        print("\nexecution  outcome    detail")
        for run in runs:
            print(f"{run.execution_id[:8]}   {run.status:<10} {run.detail}")


if __name__ == "__main__":
    asyncio.run(main())
