"""Every example under ``examples/agents/`` runs offline, as shipped, and does what it says."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.openai_stub import Reply, openai_stub, say

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"

EXPECTED = {
    "worker_loop.py": ["succeeded  7 words", "succeeded  9 words", "failed     the payload has"],
    "toolkit_agent.py": ["agent: The queue is empty.", "success  sent invoice of 120 EUR to acme"],
    "mcp_client.py": ["already holds 1 claim(s)", "is success"],
    "flow_output_contract.py": [
        "attempt 1 failed [output_contract]: output['words']: '15 words' is not of type",
        'attempt 2: {"title": "Durable flows", "summary": "each step is an execution',
        "run succeeded",
    ],
}
"""Lines each example must print."""


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for line in EXPECTED[name]:
        assert line in done.stdout, done.stdout


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_flow_example_corrects_itself_through_chat_openai() -> None:
    """The output-contract example with a real ``ChatOpenAI`` against the scripted server:
    the retry's prompt (as sent over the wire) carries the contract failure, and the corrected
    answer becomes the step's output."""
    example = _example("flow_output_contract.py")

    def answer(body: dict[str, Any]) -> Reply:
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        return say(example.reply_to(prompt))

    with openai_stub([answer, answer]) as stub:
        state = await example.main(stub.model())
    assert state["status"] == "succeeded"
    assert state["attempts"] == 2
    assert state["output"]["words"] == 15
    first, retry = (
        next(m["content"] for m in request["messages"] if m["role"] == "user")
        for request in stub.requests
    )
    assert "FAILED" not in first and '"required": [' in first
    assert "FAILED [output_contract]" in retry and "'15 words' is not of type" in retry
    assert "report_outcome" in {tool["function"]["name"] for tool in stub.requests[1]["tools"]}
