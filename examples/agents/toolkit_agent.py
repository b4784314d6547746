"""cueflow's tools in your own agent: the model itself polls, claims and reports.

``CueflowToolkit`` gives langchain-core tools (``poll_executions``, ``claim_execution``,
``report_outcome``, ``release_execution``, ``get_execution``; cue management with
``include_management=True``) that any tool-calling loop can use: the few lines of ``agent()``
below, ``langchain.agents.create_agent``, or your framework's. The toolkit keeps claimed leases
alive and releases unfinished claims when it closes.

Runs offline as is: a scripted chat model stands in for the LLM, against an in-memory embedded
engine. ``python examples/agents/toolkit_agent.py`` (needs ``pip install 'cueflow[agents]'``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool

import cueflow
from cueflow.agents import CueflowToolkit
from cueflow.agents.testing import ScriptedChatModel, answer, calls, tool_results

INVOICES = [
    {"task": "invoice", "customer": c, "amount": a} for c, a in [("acme", 120), ("globex", 75)]
]


def scripted_model(messages: list[BaseMessage]) -> AIMessage:
    """What an LLM would do: poll, claim the first execution, do it, report, poll again."""
    replies = tool_results(messages)
    if not replies:
        return calls(("poll_executions", {"limit": 5}))
    last = json.loads(replies[-1].text) if replies[-1].status == "success" else {}
    if "executions" in last:
        if not last["executions"]:
            return answer("The queue is empty.")
        return calls(("claim_execution", {"execution_id": last["executions"][0]["execution_id"]}))
    if last.get("claimed"):
        invoice = last["payload"]
        return calls(("report_outcome", {
            "execution_id": last["execution_id"], "success": True,
            "result": f"sent invoice of {invoice['amount']} EUR to {invoice['customer']}",
            "external_id": f"INV-{invoice['customer'].upper()}",
        }))  # fmt: skip
    return calls(("poll_executions", {"limit": 5}))


async def agent(model: BaseChatModel, tools: list[BaseTool], goal: str, max_steps: int = 20) -> str:
    """A minimal tool-calling loop on langchain-core: call the model, run its tool calls.

    Models make mistakes: a tool name that does not exist, arguments that are not valid JSON
    (``invalid_tool_calls``), arguments that break the schema. Each is answered with an error
    message the model can correct itself from, never a crash, and every tool call gets exactly
    one answer (providers refuse the next request otherwise)."""
    by_name = {t.name: t for t in tools}
    llm = model.bind_tools(tools)
    messages: list[BaseMessage] = [SystemMessage("You process cueflow work."), HumanMessage(goal)]
    for _ in range(max_steps):
        reply = await llm.ainvoke(messages)
        messages.append(reply)
        if not reply.tool_calls and not reply.invalid_tool_calls:
            return reply.text
        for call in reply.tool_calls:
            tool = by_name.get(call["name"])
            if tool is None:  # a made-up tool
                known = ", ".join(by_name)
                text = f"unknown tool {call['name']!r}; the tools are: {known}"
                result = ToolMessage(text, tool_call_id=call["id"], status="error")
            else:
                result = await tool.ainvoke(call)  # refusals come back as error messages
            print(f"  {call['name']}({call['args']}) -> {result.text[:100]}")
            messages.append(result)
        for bad in reply.invalid_tool_calls:  # arguments that are not valid JSON
            text = f"invalid tool call: {bad.get('error') or 'the arguments are not valid JSON'}"
            print(f"  {bad.get('name')}: {text}")
            messages.append(ToolMessage(text, tool_call_id=bad.get("id") or "", status="error"))
    return "gave up"


async def main() -> None:
    model = ScriptedChatModel(policy=scripted_model)
    # A real model instead (any langchain-core chat model that supports tool calling):
    #   pip install langchain-openai            # or langchain-anthropic, langchain-ollama, ...
    #   from langchain_openai import ChatOpenAI
    #   model = ChatOpenAI(model="gpt-4.1-mini")  # reads OPENAI_API_KEY (and OPENAI_BASE_URL)
    engine = cueflow.open_engine("sqlite://")
    async with engine:
        me = await engine.account("billing@example.com")
        at = (engine.clock.now() + timedelta(seconds=1)).isoformat()
        for invoice in INVOICES:
            await engine.create_cue(me, {
                "name": f"invoice-{invoice['customer']}", "transport": "worker",
                "schedule": {"type": "once", "at": at}, "payload": invoice,
            })  # fmt: skip
        while len(await engine.claimable(me)) < len(INVOICES):
            await asyncio.sleep(0.1)
        # Over HTTP instead: CueflowToolkit.for_url("http://127.0.0.1:8000") (CUEFLOW_API_KEY)
        async with CueflowToolkit.for_engine(engine, me) as toolkit:
            final = await agent(model, toolkit.get_tools(), "Process the due invoices.")
        print(f"agent: {final}")
        page = await engine.list_executions(me)
        for execution in page.rows:
            print(f"{execution.id[:8]} {execution.status:<8} {execution.outcome_result}")


if __name__ == "__main__":
    asyncio.run(main())
