"""The dashboard's API keys page (``docs/operations.md``, "Scoped keys"), in headless Chromium
against a real ``cueflow serve``: an operator creates a worker key (its secret shown once, and
it works with its scope only), sees its scope, creation and last use, revokes it, and a read
key sees the list but cannot create one. A name full of markup stays text.

Uses the browser and server fixtures of ``tests/ui_support.py`` (skipped without Playwright and
Chromium unless ``CUEFLOW_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.ui_support import browser, screenshot, server, sign_in  # noqa: F401  (fixtures)

SECRET_PATTERN = re.compile(r"^cue_sk_[0-9a-f]{32}$")
"""What a new key's secret looks like."""
HOSTILE_NAME = '<img src=x onerror="window.pwned=1">host'


def test_operator_creates_sees_and_revokes_a_worker_key(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"keys-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        sign_in(page, base, key, email)
        page.click("nav >> text=API keys")
        account = page.locator('#keys-table tr[data-key-id="account"]')
        expect(account).to_contain_text(key[:12])
        expect(account.locator(".key-scope")).to_have_text("full")
        expect(page.locator("#keys-table tr.empty")).to_be_visible()

        # create a worker key: its secret is shown once and works only as a worker
        page.fill("#key-name", HOSTILE_NAME)
        page.select_option("#key-scope", "worker")
        page.click("#key-form button[type=submit]")
        secret_node = page.locator("#new-key-secret")
        expect(secret_node).to_have_text(SECRET_PATTERN)
        secret = secret_node.inner_text()
        worker = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base}/v1/executions/claimable", headers=worker).status_code == 200
        refused = httpx.delete(f"{base}/v1/cues/cue_anything", headers=worker)
        assert refused.json()["error"]["code"] == "insufficient_scope"

        [created] = httpx.get(
            f"{base}/v1/auth/keys", headers={"Authorization": f"Bearer {key}"}
        ).json()["keys"]
        row = page.locator(f'#keys-table tr[data-key-id="{created["id"]}"]')
        expect(row).to_contain_text(HOSTILE_NAME)  # as text, never markup
        expect(row.locator(".key-scope")).to_have_text("worker")
        expect(row).to_contain_text(secret[:12])
        assert secret not in page.locator("#keys-table").inner_text()
        # it was used just now: a fresh visit shows when
        page.click("nav >> text=Workers")
        page.click("nav >> text=API keys")
        expect(row.locator(".key-last-used")).not_to_have_text("never")
        expect(page.locator("#new-key")).to_be_hidden()  # the secret is not shown again
        screenshot(page, "ui-keys", store)

        # revoke it
        row.locator('[data-action="revoke"]').click()
        page.locator('dialog [data-action="confirm"]').click()
        expect(row).to_have_count(0)
        answer = httpx.get(f"{base}/v1/executions/claimable", headers=worker)
        assert answer.json()["error"]["code"] == "key_revoked"
        assert not page.evaluate("window.pwned === 1")
        assert crashes == []
    finally:
        page.close()


def test_a_read_key_lists_keys_but_cannot_create_one(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"reader-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    reader = httpx.post(
        f"{base}/v1/auth/keys",
        json={"scope": "read", "name": "dashboard"},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    try:
        sign_in(page, base, reader["api_key"], email)
        page.click("nav >> text=API keys")
        row = page.locator(f'#keys-table tr[data-key-id="{reader["id"]}"]')
        expect(row.locator(".key-scope")).to_have_text("read")
        page.click("#key-form button[type=submit]")
        expect(page.locator("#key-form .form-error")).to_contain_text("'read' scope")
        expect(page.locator("#new-key")).to_be_hidden()
        screenshot(page, "ui-keys-read-only", store)
    finally:
        page.close()
