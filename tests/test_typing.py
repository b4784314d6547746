"""The types users get: ``mypy --strict`` (the project's ``[tool.mypy]``) passes over
``cueflow/``, the built-in plugins under ``plugins/`` (users import them too) and
``tests/typing/embedding_app.py``, a user's program written against the public embedding API
as the README shows it; that program also runs. It passes as well over what users copy: every
file under ``examples/`` (the agents' included) and every Python block of the README, each
checked as a module of its own; and every package users import from ships ``py.typed``.

mypy is a dev extra: without it this fails rather than skips. Its cache lives in
``build/mypy-cache``: about 20 s cold, a few seconds when little changed.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_SCRIPT = ROOT / "tests" / "typing" / "embedding_app.py"
MYPY_TIMEOUT_SECONDS = 600
MYPY = [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache")]


def test_mypy_strict_passes_over_cueflow_its_plugins_and_a_user_script() -> None:
    assert importlib.util.find_spec("mypy") is not None, (
        "mypy is not installed: install the dev extras (pip install -e '.[dev]')"
    )
    result = subprocess.run(
        MYPY,
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


def python_blocks(page: str) -> list[str]:
    """The ```` ```python ```` blocks of a Markdown page, those indented in lists included,
    dedented."""
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL)
    return [re.sub(rf"^{indent}", "", body, flags=re.MULTILINE) for indent, body in blocks]


def test_mypy_strict_passes_over_the_examples_and_the_readme_snippets(tmp_path: Path) -> None:
    blocks = python_blocks("README.md")
    assert len(blocks) >= 6, "the README's Python blocks were not found"
    blocks += python_blocks("docs/embedding.md")  # the schedules-in-code page, too
    snippets = []
    for number, block in enumerate(blocks, 1):
        snippet = tmp_path / f"snippet_{number}.py"
        snippet.write_text(block, encoding="utf-8")
        snippets.append(str(snippet))
    examples = sorted((ROOT / "examples").rglob("*.py"))
    assert {"embedded_app.py", "minimal_worker.py", "toolkit_agent.py"} <= {
        p.name for p in examples
    }
    result = subprocess.run(
        [*MYPY, *map(str, examples), *snippets],
        cwd=ROOT,  # the options are pyproject.toml's [tool.mypy]; the files are these
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT_SECONDS,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy --strict found errors:\n{report}"
    assert f"in {len(examples) + len(snippets)} source files" in report, report


def test_every_package_users_import_from_ships_py_typed() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_data = setuptools["package-data"]
    plugins = [path.parent for path in (ROOT / "plugins").glob("*/__init__.py")]
    packages = [ROOT / "cueflow", *plugins]
    assert len(plugins) >= 5, plugins
    for package in packages:
        assert (package / "py.typed").is_file(), f"{package.name} has no py.typed"
        assert "py.typed" in package_data.get(package.name, []), (
            f"{package.name}'s py.typed is not in [tool.setuptools.package-data]"
        )
