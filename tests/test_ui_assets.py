"""The dashboard's files at ``/ui``: served without a key, with their content types and a
strict content security policy, nothing else below ``/ui``, and all shipped in the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.helpers import assert_error

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""The files do not touch the store: one store is enough."""

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "cueflow" / "ui"
_REFERENCE = re.compile(r'(?:src|href)="([\w./-]+\.(?:js|css|svg))"')
_IMPORT = re.compile(r'from "(\.{1,2}/[\w./-]+\.js)"')


@SQLITE_ONLY
async def test_ui_redirects_to_its_trailing_slash(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui")
    assert response.status_code == 308
    assert response.headers["location"] == "ui/"


@SQLITE_ONLY
async def test_the_page_is_html_served_without_a_key_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="app.js">' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


@SQLITE_ONLY
async def test_every_file_the_page_loads_is_served_with_its_content_type(
    client: httpx.AsyncClient,
) -> None:
    expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    pending = _REFERENCE.findall((await client.get("/ui/")).text)
    assert {"app.js", "style.css", "icon.svg"} <= set(pending)
    served: set[str] = set()
    while pending:
        name = pending.pop()
        if name in served:
            continue
        response = await client.get(f"/ui/{name}")
        assert response.status_code == 200, name
        suffix = Path(name).suffix
        assert response.headers["content-type"].startswith(expected[suffix]), name
        served.add(name)
        if suffix == ".js":  # follow the module graph: a missing module breaks the whole app
            base = Path(name).parent
            for target in _IMPORT.findall(response.text):
                pending.append((base / target).as_posix().replace("views/../", ""))
    assert {"api.js", "dom.js", "cron.js", "graph.js", "views/feed.js"} <= served
    assert {"views/execution.js", "views/flows.js", "views/runs.js", "views/run.js"} <= served


@SQLITE_ONLY
@pytest.mark.parametrize(
    "path",
    [
        "/ui/missing.js",
        "/ui/__init__.py",
        "/ui/views/",
        "/ui/%2e%2e/api/app.py",
        "/ui/..%2f..%2fpyproject.toml",
        "/ui/.hidden.js",
    ],
)
async def test_anything_else_below_ui_is_a_404_envelope(
    client: httpx.AsyncClient, path: str
) -> None:
    assert_error(await client.get(path), 404, "not_found")


def test_every_dashboard_file_is_declared_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["cueflow"]
    shipped = {path for pattern in patterns for path in (ROOT / "cueflow").glob(pattern)}
    files = [path for path in UI.rglob("*") if path.suffix in {".html", ".js", ".css", ".svg"}]
    assert files
    missing = [path.name for path in files if path not in shipped]
    assert not missing, f"not shipped in the wheel: {missing}"
