"""What each install carries: the extras of ``pyproject.toml``, the core importing without them,
the one-line messages a missing extra gives, ``cueflow --version``, and the README's shell
blocks as ``.ci/readme_blocks.py`` reads them.

Fresh venvs per extra (slow) are ``.ci/extras.sh``'s, beside the test run; here the core's
independence is checked in this venv by refusing the extras' modules to a child interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import cueflow
from cueflow.extras import EXTRA_OF_MODULE

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]

_WITHOUT_EXTRAS = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # import raises ModuleNotFoundError, find_spec answers None
sys.argv = ["cueflow", *{argv!r}]
"""


def _without_extras(code: str, argv: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter where no extra's module can be imported."""
    prelude = _WITHOUT_EXTRAS.format(blocked=sorted(EXTRA_OF_MODULE), argv=list(argv))
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


def test_the_core_runs_an_embedded_handler_without_any_extra() -> None:
    done = _without_extras(
        "sys.path.insert(0, '.ci')\n"
        "from extras_smoke import embedded_handler_runs\n"
        "embedded_handler_runs()\n"
        "print('handled', sorted(m for m in sys.modules if sys.modules[m] is not None"
        " and m.split('.')[0] in ('fastapi', 'typer', 'asyncpg')))\n"
    )
    assert done.stdout == "handled []\n", done.stdout + done.stderr


def test_a_missing_extra_is_named_in_one_line() -> None:
    serve = _without_extras("from cueflow.__main__ import main; main()", ("serve",))
    assert serve.returncode == 2
    assert serve.stderr == "cueflow serve needs the server extra: pip install 'cueflow[server]'\n"
    cues = _without_extras("from cueflow.__main__ import main; main()", ("cues", "list"))
    assert cues.stderr == "cueflow cues needs the cli extra: pip install 'cueflow[cli]'\n"
    api = _without_extras("import cueflow.api")
    assert "cueflow.api (the REST API) needs the server extra" in api.stderr
    assert "pip install 'cueflow[server]'" in api.stderr
    postgres = _without_extras(
        "import cueflow\ncueflow.open_engine('postgresql://postgres@127.0.0.1/x')"
    )
    assert "postgresql:// needs the postgres extra (asyncpg): pip install 'cueflow[postgres]'" in (
        postgres.stderr
    )


def test_version_is_one_value_everywhere() -> None:
    done = _without_extras("from cueflow.__main__ import main; main()", ("--version",))
    assert done.stdout == f"cueflow {cueflow.__version__}\n"
    from importlib.metadata import version

    assert version("cueflow") == cueflow.__version__
    assert PYPROJECT["project"]["dynamic"] == ["version"]


def test_extras_layout() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    core = " ".join(project["dependencies"])
    for server_only in ("fastapi", "uvicorn", "typer", "rich", "asyncpg", "pyyaml"):
        assert server_only not in core
    assert set(EXTRA_OF_MODULE.values()) <= set(EXTRAS)
    assert EXTRAS["all"] == ["cueflow[server,postgres,agents,mcp,otel]"]
    assert "cueflow[all,docs,bench]" in EXTRAS["dev"]
    assert "cueflow[cli]" in EXTRAS["server"]


def test_readme_blocks_are_read_with_their_not_run_reasons() -> None:
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        import readme_blocks
    finally:
        sys.path.remove(str(ROOT / ".ci"))
    blocks = readme_blocks.blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert 'pip install -e ".[server]"' in blocks[0].text and blocks[0].not_run is None
    skipped = [b for b in blocks if b.not_run]
    assert all(b.not_run for b in skipped) and len(skipped) <= len(blocks) // 2
