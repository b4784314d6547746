"""No private back door: a third-party plugin package, installed with pip from its own
``pyproject.toml``, delivers a cue created through the REST API of a real ``cueflow serve``.

The package (``tests/plugins/cueflow_jsonl``) is installed with ``pip --target`` into a
directory that only the subprocesses put on their path, so the rest of the test run (and the
virtualenv) never sees it; the directory is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import cueflow_server

PLUGIN_SOURCE = Path(__file__).parent / "plugins" / "cueflow_jsonl"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where ``cueflow-jsonl`` is installed (built offline from a copy of its source, so the
    build leaves nothing in the repository)."""
    work = tmp_path_factory.mktemp("cueflow-jsonl")
    source, site = work / "source", work / "site"
    shutil.copytree(PLUGIN_SOURCE, source)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run(
        [*pip, "--no-build-isolation", "--target", str(site), str(source)],
        check=True,
        timeout=300,
    )
    assert (site / "cueflow_jsonl" / "__init__.py").exists()
    try:
        yield site
    finally:
        shutil.rmtree(work, ignore_errors=True)


def on_path(site: Path) -> str:
    """``PYTHONPATH`` with the plugin's install directory first."""
    return os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        time.sleep(0.1)
    return result


def test_a_cue_created_through_the_rest_api_is_delivered_by_the_installed_plugin(
    site_dir: Path, database_url: str, tmp_path: Path
) -> None:
    deliveries = tmp_path / "deliveries.jsonl"
    env = {"PYTHONPATH": on_path(site_dir), "CUEFLOW_JSONL_FILE": str(deliveries)}
    with cueflow_server(database_url, tmp_path, **env) as base:
        key = httpx.post(f"{base}/v1/auth/register", json={"email": "plugin@example.com"})
        headers = {"Authorization": f"Bearer {key.json()['api_key']}"}
        refused = httpx.post(
            f"{base}/v1/cues",
            headers=headers,
            json={
                "name": "with-callback",
                "transport": "jsonl",
                "schedule": {"type": "once", "at": _soon(60)},
                "callback": {"url": "https://example.com/hook"},
            },
        )
        assert refused.status_code == 422, refused.text
        assert (
            refused.json()["error"]["message"] == "body: the jsonl transport takes no callback.url"
        )
        created = httpx.post(
            f"{base}/v1/cues",
            headers=headers,
            json={
                "name": "nightly-export",
                "transport": "jsonl",
                "schedule": {"type": "once", "at": _soon(1.5)},
                "payload": {"task": "export", "table": "orders"},
            },
        )
        assert created.status_code == 201, created.text
        cue = created.json()
        assert cue["transport"] == "jsonl"

        def succeeded() -> list[dict[str, Any]]:
            page = httpx.get(f"{base}/v1/executions", headers=headers).json()
            return [e for e in page["executions"] if e["status"] == "success"]

        [execution] = wait_for(succeeded)
        assert execution["attempts"] == 1
        cue_after = httpx.get(f"{base}/v1/cues/{cue['id']}", headers=headers).json()
        assert cue_after["status"] == "completed"
    [line] = [json.loads(text) for text in deliveries.read_text().splitlines()]
    assert line["execution_id"] == execution["id"]
    assert line["cue_id"] == cue["id"]
    assert line["payload"] == {"task": "export", "table": "orders"}
    assert line["attempt"] == 1


def test_the_plugins_own_conformance_tests_pass_against_the_installed_package(
    site_dir: Path, tmp_path: Path
) -> None:
    project = tmp_path / "cueflow-jsonl"
    shutil.copytree(PLUGIN_SOURCE, project)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": on_path(site_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_cueflow_serve_without_the_plugin_refuses_its_cues(site_dir: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": on_path(site_dir), "CUEFLOW_DISABLE_PLUGINS": "jsonl"}
    with cueflow_server(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, **env) as base:
        key = httpx.post(f"{base}/v1/auth/register", json={"email": "off@example.com"})
        response = httpx.post(
            f"{base}/v1/cues",
            headers={"Authorization": f"Bearer {key.json()['api_key']}"},
            json={"name": "x", "transport": "jsonl", "schedule": {"type": "once", "at": _soon(60)}},
        )
    assert response.status_code == 422, response.text
    assert "transport must be" in response.json()["error"]["message"]


def test_cueflow_serve_stops_at_start_up_naming_a_pinned_plugin_that_is_missing(
    tmp_path: Path,
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cueflow", "serve", "--database-url", "sqlite://"],
        cwd=tmp_path,
        env={**os.environ, "CUEFLOW_PLUGINS": "sqlite,worker,jsonl"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "jsonl" in run.stderr and "not an installed cueflow plugin" in run.stderr


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "CUEFLOW_PLUGINS", "CUEFLOW_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
