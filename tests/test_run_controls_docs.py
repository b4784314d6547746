"""The Python example of ``docs/run-controls.md`` ("Setting controls") runs as written: a cue
created with every control through ``engine.create_cue`` and changed through
``engine.update_cue``."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0


def _python_blocks(section: str) -> list[str]:
    """The Python blocks of a section of ``docs/run-controls.md``."""
    text = (ROOT / "docs" / "run-controls.md").read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```python\n(.*?)^```", body, re.MULTILINE | re.DOTALL)


async def test_the_setting_controls_example_runs() -> None:
    [example] = _python_blocks("Setting controls")
    module = types.ModuleType("docs_run_controls")
    exec(compile(example, "docs/run-controls.md:Setting controls", "exec"), module.__dict__)
    cue = await asyncio.wait_for(module.main(), TIMEOUT)
    assert cue.priority == 9
    assert cue.overlap_policy == "skip"
    assert (cue.concurrency_limit, cue.concurrency_key) == (None, None)
    assert (cue.rate_limit, cue.rate_period_seconds, cue.rate_key) == (60, 60, "llm")
    assert cue.required_payload_keys == ["doc"]
