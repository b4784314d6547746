"""Creating, editing, searching and paging cues in the dashboard, in headless Chromium against a
real ``cueflow serve``: the form says the schedule in words as it is typed, shows the API's
validation errors under the fields they name, creates and edits a cue with its payload and run
controls; the cue list searches by name and pages through 50 at a time, as the live feed
does. Screenshots land in ``build/screenshots/``.

Uses the browser and server fixtures of ``tests/ui_support.py`` (skipped without Playwright and
Chromium unless ``CUEFLOW_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.ui_support import browser, screenshot, server, sign_in  # noqa: F401  (fixtures)


def _account(base: str) -> tuple[str, str, httpx.Client]:
    email = f"forms-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    return (
        email,
        key,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30),
    )


def test_operator_creates_and_edits_a_cue_with_errors_shown_inline(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email, key, api = _account(base)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        sign_in(page, base, key, email)
        page.click("nav >> text=Cues")
        page.click("[data-action=new-cue]")
        form = page.locator("#cue-form")
        expect(form).to_be_visible()
        page.fill("#cue-name", "morning-report")
        page.fill("#cue-timezone", "UTC")
        page.fill("#cue-cron", "30 8 * * 1-5")
        expect(form.locator(".schedule-preview")).to_contain_text("08:30")
        page.fill("#cue-payload", '{"task": ')
        page.click("[data-action=save]")
        expect(form.locator("[data-field=payload] .field-error")).to_contain_text("Not valid JSON")

        # the API's errors, each under its field: a bad cron, then a webhook without a URL
        page.fill("#cue-payload", '{"task": "report", "to": ["ops"]}')
        page.fill("#cue-cron", "61 8 * * *")
        page.click("[data-action=save]")
        schedule_error = form.locator("[data-field=schedule] > .field-error")
        expect(schedule_error).to_contain_text("Invalid cron expression")
        screenshot(page, "ui-cue-form-errors", store)
        page.fill("#cue-cron", "30 8 * * 1-5")
        page.click("[data-action=save]")
        expect(form.locator("[data-field=callback] .field-error")).to_contain_text(
            "callback.url is required"
        )
        expect(schedule_error).to_be_empty()
        page.select_option("#cue-transport", "worker")  # no webhook: this test has no DNS
        expect(page.locator("#cue-callback-url")).to_be_hidden()
        page.click("summary >> text=Run controls")
        page.fill("#control-priority", "5")
        page.click("[data-action=save]")
        expect(form).to_have_count(0)
        row = page.locator("#cues-table tr[data-cue-name='morning-report']")
        expect(row).to_be_visible()
        [created] = api.get("/v1/cues", params={"name": "morning"}).json()["cues"]
        assert created["schedule"]["cron"] == "30 8 * * 1-5"
        assert created["payload"] == {"task": "report", "to": ["ops"]}
        assert created["priority"] == 5
        assert created["transport"] == "worker"

        # a second cue of that name is refused under the name field
        page.click("[data-action=new-cue]")
        page.fill("#cue-name", "morning-report")
        page.select_option("#cue-transport", "worker")
        page.click("[data-action=save]")
        expect(form.locator("[data-field=name] .field-error")).to_contain_text("already exists")
        page.click("#cue-form [data-action=cancel]")

        # edit: the form holds the cue; the schedule changes to an interval
        row.locator("[data-action=edit]").click()
        expect(page.locator("#cue-name")).to_have_value("morning-report")
        expect(page.locator("#cue-transport")).to_be_disabled()
        page.select_option("#cue-schedule-type", "interval")
        page.fill("#cue-interval", "0")
        page.click("[data-action=save]")
        expect(schedule_error).to_contain_text("interval_seconds must be a positive integer")
        page.fill("#cue-interval", "600")
        expect(form.locator(".schedule-preview")).to_contain_text("10 minutes")
        screenshot(page, "ui-cue-form-edit", store)
        page.click("[data-action=save]")
        expect(form).to_have_count(0)
        expect(row.locator(".schedule-words")).to_contain_text("10 minutes")
        edited = api.get(f"/v1/cues/{created['id']}").json()
        assert edited["schedule"]["type"] == "interval"
        assert edited["schedule"]["interval_seconds"] == 600
        assert edited["priority"] == 5
        assert not crashes, crashes
    finally:
        page.close()
        api.close()


def test_operator_searches_and_pages_through_cues_and_executions(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email, key, api = _account(base)
    for number in range(55):
        body = {
            "name": f"{'billing' if number % 5 == 0 else 'sync'}-{number:02d}",
            "transport": "worker",
            "payload": {"task": "t"},
            "schedule": {"type": "interval", "interval_seconds": 3600},
        }
        assert api.post("/v1/cues", json=body).status_code == 201
    [first] = api.get("/v1/cues", params={"name": "sync-54"}).json()["cues"] or [None]
    target = first or api.get("/v1/cues", params={"name": "billing-50"}).json()["cues"][0]
    for _ in range(52):
        assert api.post(f"/v1/cues/{target['id']}/fire").status_code == 200
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        sign_in(page, base, key, email)
        page.click("nav >> text=Cues")
        rows = page.locator("#cues-table tbody tr")
        expect(rows).to_have_count(50)
        expect(page.locator(".pager-info")).to_have_text("1\u201350 of 55")
        page.click("[data-action=next-page]")
        expect(rows).to_have_count(5)
        expect(page.locator(".pager-info")).to_have_text("51\u201355 of 55")
        expect(page.locator("[data-action=next-page]")).to_be_disabled()
        page.fill("#cue-search", "BILLING")
        expect(rows).to_have_count(11)
        expect(page.locator(".pager-info")).to_have_text("1\u201311 of 11")
        for name in rows.evaluate_all("rows => rows.map(row => row.dataset.cueName)"):
            assert name.startswith("billing-")
        screenshot(page, "ui-cues-search", store)
        page.fill("#cue-search", "nothing-like-this")
        expect(page.locator("#cues-table .empty")).to_contain_text("No cue matches")

        page.click("nav >> text=Live feed")
        feed = page.locator("#feed-table tbody tr")
        expect(feed).to_have_count(50)
        expect(page.locator(".pager-info")).to_have_text("1\u201350 of 52")
        page.click("[data-action=next-page]")
        expect(feed).to_have_count(2)
        screenshot(page, "ui-feed-page-2", store)
        assert not crashes, crashes
    finally:
        page.close()
        api.close()
