"""The walk-through of ``docs/flows.md`` run end to end on both stores, with the definition and
``fetcher.py`` read from the page: a real ``cueflow serve``, the fetch step run by a real
``cueflow worker``, the LLM step by the agent loop with ``ChatOpenAI`` against the scripted
server (its first output breaks the contract, the retry corrects it), the approval event, and
the webhook step delivered to a local receiver."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx

from cueflow.agents import HttpWorkerClient, run_agent_worker
from cueflow.agents.answers import task_from_text
from tests.conftest import eventually
from tests.openai_stub import Reply, openai_stub, say
from tests.server import cueflow_server
from tests.webhook_support import Receiver

PAGE = Path(__file__).resolve().parents[1] / "docs" / "flows.md"
ARTICLE = "Flows are durable: each step is an execution, and its output feeds the next step."
SUMMARY = {"title": "Durable flows", "summary": "Each step's output feeds the next."}


def walkthrough_block(language: str, starting: str = "") -> str:
    """The first ``language`` code block of the walk-through that starts with ``starting``."""
    section = PAGE.read_text().split("## Walk-through", 1)[1]
    for found in re.finditer(rf"```{language}\n(.*?)```", section, re.DOTALL):
        code = textwrap.dedent(found.group(1)).strip() + "\n"
        if code.startswith(starting):
            return code
    raise AssertionError(f"no {language} block starting with {starting!r} in the walk-through")


def summarizer(body: dict[str, Any]) -> Reply:
    """The scripted LLM: a summary without a title, until the prompt says that broke the
    contract."""
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    article = task_from_text(prompt)["payload"]["flow"]["parents"]["fetch"]
    assert article == ARTICLE
    if "FAILED [output_contract]" in prompt:
        return say(json.dumps(SUMMARY))
    return say(json.dumps({"success": True, "output": {"summary": SUMMARY["summary"]}}))


async def _fetch_with_the_worker(base: str, key: str, cwd: Path) -> None:
    """``cueflow worker --handler 'fetch=python:fetcher:fetch' --once``, as the page says."""
    command = walkthrough_block("bash", "cueflow worker").split()
    assert command[:2] == ["cueflow", "worker"]
    handler = command[command.index("--handler") + 1].strip("'")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cueflow", "worker", "--handler", handler, "--once",
        cwd=cwd, env={**os.environ, "CUEFLOW_API_URL": base, "CUEFLOW_API_KEY": key},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == 0, (out + err).decode()[-2000:]


async def test_the_walkthrough_fetches_summarizes_is_approved_and_publishes(
    database_url: str, tmp_path: Path
) -> None:
    definition = json.loads(walkthrough_block("json"))
    (tmp_path / "fetcher.py").write_text(walkthrough_block("python", "# fetcher.py"))
    async with Receiver() as receiver:
        receiver.answers["/article"] = ARTICLE.encode()
        publish = next(step for step in definition["steps"] if step["id"] == "publish")
        publish["callback"]["url"] = receiver.url("/publish")
        env = {"CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "true"}
        with cueflow_server(database_url, tmp_path, **env) as base:
            async with httpx.AsyncClient(base_url=base, timeout=10) as api:
                registered = await api.post("/v1/auth/register", json={"email": "me@example.com"})
                key = registered.json()["api_key"]
                auth = {"Authorization": f"Bearer {key}"}
                flow = await api.post("/v1/flows", json=definition, headers=auth)
                assert flow.status_code == 201, flow.text
                body = {"input": {"url": receiver.url("/article")}, "idempotency_key": "article-1"}
                runs_path = f"/v1/flows/{flow.json()['id']}/runs"
                started = await api.post(runs_path, json=body, headers=auth)
                assert started.status_code == 201, started.text
                run_path = f"/v1/flow-runs/{started.json()['id']}"

                await _fetch_with_the_worker(base, key, tmp_path)
                fetched = (await api.get(run_path, headers=auth)).json()
                assert fetched["steps"]["fetch"]["output"] == ARTICLE

                with openai_stub([summarizer, summarizer]) as stub:
                    agent = run_agent_worker(
                        stub.model(), HttpWorkerClient(base, key), task="summarize", until_idle=True
                    )
                    runs = await asyncio.wait_for(agent, timeout=60)
                assert len(runs) == 2 and len(stub.requests) == 2
                retry_prompt = stub.requests[1]["messages"][1]["content"]
                assert "'title' is a required property" in retry_prompt
                waiting = (await api.get(run_path, headers=auth)).json()
                assert waiting["status"] == "waiting"
                assert waiting["steps"]["summarize"]["attempts"] == 2
                assert waiting["steps"]["summarize"]["output"] == SUMMARY
                assert receiver.to("/publish") == []

                approval = {"data": {"by": "me@example.com"}}
                sent = await api.post(f"{run_path}/events/approved", json=approval, headers=auth)
                assert sent.json()["resumed"] == ["approval"], sent.text

                async def published() -> bool:
                    shown = (await api.get(run_path, headers=auth)).json()
                    return bool(shown["status"] == "succeeded" and receiver.to("/publish"))

                await eventually(published, timeout=20)
        [delivered] = receiver.to("/publish")
        parents = json.loads(delivered.body)["payload"]["flow"]["parents"]
        assert parents == {"summarize": SUMMARY, "approval": {"by": "me@example.com"}}
