"""Guards of the plugin contract, as Datasette guards its own: every hook has a section in
``docs/plugins.md``, a docstring that states its contract, and a test that names it; and the
examples of the plugin guides run as printed (their conformance tests are collected here)."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest

from cueflow import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
HOOKS = sorted(hookspecs.all_hooks())
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_MARK = "# file: "


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_files(doc: str) -> dict[str, str]:
    """The fenced blocks of ``doc`` whose first line is ``# file: <path>``, by path, in order."""
    found: dict[str, str] = {}
    for _, body in FENCE.findall(read(doc)):
        first, _, rest = body.partition("\n")
        if first.startswith(FILE_MARK):
            found[first[len(FILE_MARK) :].strip()] = rest
    return found


def load_examples(doc: str) -> dict[str, types.ModuleType]:
    """Execute the Python files of ``doc`` in order, each as a module: ``pkg/__init__.py`` as
    the importable package ``pkg``, other files as modules of their own."""
    modules: dict[str, types.ModuleType] = {}
    for path, source in code_files(doc).items():
        if not path.endswith(".py"):
            continue
        parts = Path(path).with_suffix("").parts
        name = parts[-2] if parts[-1] == "__init__" else f"docs_example_{parts[-1]}"
        module = types.ModuleType(name)
        module.__file__ = str(DOCS / doc)
        sys.modules[name] = module
        exec(compile(source, f"{doc}:{path}", "exec"), module.__dict__)
        modules[path] = module
    return modules


TRANSPORT_GUIDE = "writing-a-transport-plugin.md"
STORAGE_GUIDE = "writing-a-storage-plugin.md"
TRANSPORT_EXAMPLE = load_examples(TRANSPORT_GUIDE)
STORAGE_EXAMPLE = load_examples(STORAGE_GUIDE)

# The guides' conformance test classes, run here exactly as printed.
TestSpoolTransportFromTheGuide = TRANSPORT_EXAMPLE["tests/test_spool.py"].TestSpoolTransport
TestMemSqliteStoreFromTheGuide = STORAGE_EXAMPLE["tests/test_memsqlite.py"].TestMemSqliteStore


# every hook documented and tested -------------------------------------------------------------


def test_there_are_hooks_to_guard() -> None:
    assert HOOKS == [
        "cueflow_register_notifiers",
        "cueflow_register_stores",
        "cueflow_register_transports",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_docs(hook: str) -> None:
    assert f"\n### {hook}\n" in read("plugins.md"), f"docs/plugins.md has no section for {hook}"


def test_the_plugin_docs_describe_no_hook_that_does_not_exist() -> None:
    sections = re.findall(r"^### (cueflow_\w+)$", read("plugins.md"), re.MULTILINE)
    assert sorted(sections) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_name_in_a_test(hook: str) -> None:
    test_files = [
        path
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name and "plugins" not in path.relative_to(TESTS).parts
    ]
    assert any(hook in path.read_text(encoding="utf-8") for path in test_files), (
        f"no test under tests/ names {hook}"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_docstring_states_its_contract(hook: str) -> None:
    spec = hookspecs.all_hooks()[hook]
    doc = inspect.getdoc(spec) or ""
    for parameter in inspect.signature(spec).parameters:
        assert f":param {parameter}:" in doc, f"{hook} does not document {parameter}"
        assert f"**`{parameter}" in read("plugins.md"), f"plugins.md misses {hook}'s {parameter}"
    assert "When:" in doc, f"{hook} does not say when it is called"
    assert "Synchronous" in doc, f"{hook} does not say whether it is sync or async"
    assert ":return:" in doc, f"{hook} does not say what its return value means"


def test_the_settings_that_choose_plugins_are_documented() -> None:
    text = read("plugins.md")
    assert "`CUEFLOW_PLUGINS`" in text and "`CUEFLOW_DISABLE_PLUGINS`" in text


def test_the_plugin_docs_link_only_to_files_that_exist() -> None:
    for doc in (DOCS / name for name in ("plugins.md", TRANSPORT_GUIDE, STORAGE_GUIDE)):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_the_readme_points_to_the_plugin_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/plugins.md)" in readme


# the guides' examples run ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guide", "package"),
    [(TRANSPORT_GUIDE, "cueflow_spool"), (STORAGE_GUIDE, "cueflow_memsqlite")],
)
def test_the_guides_pyproject_declares_its_package_in_the_cueflow_group(
    guide: str, package: str
) -> None:
    project = tomllib.loads(code_files(guide)["pyproject.toml"])
    assert list(project["project"]["entry-points"]["cueflow"].values()) == [package]
    assert f"{package}/__init__.py" in code_files(guide)


async def test_the_transport_guides_app_delivers_one_execution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUEFLOW_SPOOL_DIR", "restored after the test")
    document = await TRANSPORT_EXAMPLE["run_spool.py"].deliver_one(tmp_path / "spool")
    assert document["name"] == "nightly-export"
    assert document["payload"] == {"table": "orders"}
    assert document["attempt"] == 1


async def test_the_transport_guides_transport_reports_an_unwritable_spool_as_a_result(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from cueflow.transport import Delivery

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    transport: Any = TRANSPORT_EXAMPLE["cueflow_spool/__init__.py"].SpoolTransport(blocker)
    delivery = Delivery(
        execution_id="5b0e6f5e-0000-4000-8000-000000000000",
        cue_id="cue_x",
        cue_name="export",
        user_id="u",
        scheduled_for=datetime.now(UTC),
        attempt=1,
        payload={},
    )
    result = await transport.deliver(delivery)
    assert result.ok is False
    assert "cannot write" in (result.error or "")
