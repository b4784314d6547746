"""An LLM step with an output contract: a flow fetches an article (an in-process step), then an
agent summarizes it (a worker step run by ``run_agent_worker``) into JSON that must match the
step's ``output_schema``. The model's first answer breaks the contract (``words`` as text), so
the attempt fails (type ``output_contract``); the retry's prompt shows the contract, the output
that broke it and why, and the model corrects itself. The run succeeds with the corrected
output.

Runs offline as is: a scripted chat model stands in for the LLM (``reply_to`` is what it would
answer), against an in-memory embedded engine. ``python examples/agents/flow_output_contract.py``
(needs ``pip install 'cueflow[agents]'``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage

import cueflow
from cueflow.agents import EngineWorkerClient, run_agent_worker
from cueflow.agents.answers import task_from_text
from cueflow.agents.testing import ScriptedChatModel

ARTICLE = "Durable flows: each step is an execution, and its output feeds the steps after it."

SUMMARY_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "words": {"type": "integer"},
    },
    "required": ["title", "summary", "words"],
}

FLOW = {
    "name": "summarize-article",
    "input_schema": {"type": "object", "required": ["url"]},
    "steps": [
        {"id": "fetch", "transport": "inprocess", "payload": {"task": "fetch"}},
        {
            "id": "summarize",
            "needs": ["fetch"],
            "payload": {"task": "summarize", "instructions": "Summarize the fetched article."},
            "output_schema": SUMMARY_SCHEMA,
            "retry": {"max_attempts": 2, "backoff_minutes": [0]},
        },
    ],
}


def reply_to(prompt: str) -> str:
    """What an LLM answers to the task message of a summarize step: first the word count as
    text (breaking the contract); once the prompt says an attempt failed on the contract, an
    output that matches it, as bare JSON."""
    article = task_from_text(prompt)["payload"]["flow"]["parents"]["fetch"]
    title, _, rest = article.partition(":")
    words = len(article.split())
    if "FAILED [output_contract]" in prompt:
        return json.dumps({"title": title, "summary": rest.strip(), "words": words})
    output = {"title": title, "summary": rest.strip(), "words": f"{words} words"}
    return json.dumps({"success": True, "output": output})


def scripted(messages: list[BaseMessage]) -> str:
    """The scripted model: :func:`reply_to` on the task message."""
    return reply_to(next(m for m in messages if isinstance(m, HumanMessage)).text)


async def main(model: BaseChatModel | None = None) -> dict[str, Any]:
    """Run the flow with ``model`` as the summarizing agent; the summarize step's state."""
    model = model or ScriptedChatModel(policy=scripted)
    # A real model instead: from langchain_openai import ChatOpenAI; ChatOpenAI(model="gpt-4o-mini")
    engine = cueflow.open_engine("sqlite://")  # in memory
    async with engine:
        me = await engine.account("me@example.com")

        @engine.handler("fetch")
        def fetch(payload: dict[str, Any]) -> str:
            return ARTICLE  # a real step would download payload["flow"]["input"]["url"]

        flow = await engine.create_flow(me, FLOW)
        run, _, _ = await engine.start_flow_run(me, flow.id, {"input": {"url": "https://a.test"}})
        agent = run_agent_worker(
            model,
            EngineWorkerClient(engine, me),  # or HttpWorkerClient(url, api_key) for a server
            task="summarize",
            max_executions=2,  # the first attempt and its retry
            poll_seconds=0.2,
        )
        taken = await asyncio.wait_for(agent, timeout=60)
        retry = await engine.get_execution(me, taken[-1].execution_id)
        failure = retry.payload_override["flow"]["previous_failure"]
        print(f"attempt {failure['attempt']} failed [{failure['type']}]: {failure['reason']}")
        final, steps = await engine.get_flow_run(me, run.id)
        step = next(s for s in steps if s.step_id == "summarize")
        print(f"attempt {step.attempts}: {json.dumps(step.output)}")
        print(f"run {final.status}")
        return {"status": final.status, "attempts": step.attempts, "output": step.output}


if __name__ == "__main__":
    asyncio.run(main())
