"""Every example under ``examples/agents/`` runs offline, as shipped, and does what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"

EXPECTED = {
    "worker_loop.py": ["succeeded  7 words", "succeeded  9 words", "failed     the payload has"],
    "toolkit_agent.py": ["agent: The queue is empty.", "success  sent invoice of 120 EUR to acme"],
    "mcp_client.py": ["already holds 1 claim(s)", "is success"],
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
