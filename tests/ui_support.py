"""Set-up shared by the dashboard's browser tests (``tests/test_ui_*browser.py``): one headless
Chromium per module, a real ``cueflow serve`` on a fresh database of each store, screenshots
under ``build/screenshots/`` and signing in.

Needs Playwright for Python and Debian's ``chromium`` (``CUEFLOW_CHROMIUM`` names another
binary); without them the tests skip, unless ``CUEFLOW_REQUIRE_BROWSER=1`` (CI) makes them fail.
A test module uses the fixtures by importing them (``from tests.ui_support import browser,
server``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.server import cueflow_server

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CUEFLOW_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 20_000
"""Upper bound for anything the page should show; generous because the CI cores are shared."""
T = TypeVar("T")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (``None``: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    reason = missing_browser()
    if reason:
        if os.environ.get("CUEFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test is required: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def off_the_loop(function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run an async helper to completion in a thread: Playwright's sync API keeps an event loop
    running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, function(*args)).result()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real ``cueflow serve`` on a fresh database; yields (base URL, store name)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    else:
        if not pg_available():
            pytest.skip("PostgreSQL is not reachable")
        url = off_the_loop(fresh_pg_database)
    try:
        with cueflow_server(url, tmp_path) as base:
            yield base, request.param
    finally:
        if request.param != "sqlite":
            off_the_loop(drop_pg_database, url)


def screenshot(page: Any, name: str, store: str) -> Path:
    """Save the page under ``build/screenshots/`` and print where."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (f"{name}.png" if store == "sqlite" else f"{name}-{store}.png")
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def sign_in(page: Any, base: str, key: str, email: str) -> None:
    """Open the dashboard and sign in with ``key``."""
    from playwright.sync_api import expect

    page.goto(f"{base}/ui")
    page.fill("#api-key", key)
    page.click("#sign-in button[type=submit]")
    expect(page.locator(".account-email")).to_have_text(email)
