"""The types users get: ``mypy --strict`` (the project's ``[tool.mypy]``) passes over
``cueflow/``, the built-in plugins under ``plugins/`` (users import them too) and
``tests/typing/embedding_app.py``, a user's program written against the public embedding API
as the README shows it; that program also runs.

mypy is a dev extra: without it this fails rather than skips. Its cache lives in
``build/mypy-cache``: about 20 s cold, a few seconds when little changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_SCRIPT = ROOT / "tests" / "typing" / "embedding_app.py"
MYPY_TIMEOUT_SECONDS = 600


def test_mypy_strict_passes_over_cueflow_its_plugins_and_a_user_script() -> None:
    assert importlib.util.find_spec("mypy") is not None, (
        "mypy is not installed: install the dev extras (pip install -e '.[dev]')"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache")],
        cwd=ROOT,  # the files and options are pyproject.toml's [tool.mypy]
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT_SECONDS,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict found errors:\n{report}"
    checked = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert {"cueflow", "plugins", "tests/typing"} <= set(checked), checked


def test_the_typed_user_script_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(USER_SCRIPT)],
        cwd=tmp_path,  # no stray .env file
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("success"), result.stdout
