"""Run controls in the dashboard (``docs/run-controls.md``), in headless Chromium against a
real ``cueflow serve``: the cues page shows each cue's overlap policy, priority, concurrency
and rate limits (with their keys) and required payload keys; the live feed and an execution's
page show its priority and, for an execution a limit holds back, what it waits for
(``waiting_for``, from a real held-back claim and a rendering of each shape);
the execution's page shows its cue's controls. Keys full of markup stay text.

Uses the browser and server fixtures of ``tests/ui_support.py`` (skipped without
Playwright and Chromium unless ``CUEFLOW_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.ui_support import browser, screenshot, server, sign_in  # noqa: F401  (fixtures)

HOSTILE_KEY = '<img src=x onerror="window.pwned=1">llm'
CONTROLS = {
    "overlap_policy": "buffer_one",
    "priority": 7,
    "concurrency": {"limit": 2, "key": HOSTILE_KEY},
    "rate_limit": {"limit": 60, "period_seconds": 60, "key": "llm"},
    "required_payload_keys": ["doc", "lang"],
}
HELD_BY_CONCURRENCY = {
    "reason": "concurrency",
    "key": "llm",
    "limit": 2,
    "in_flight": 2,
    "until": None,
}
HELD_BY_RATE = {
    "reason": "rate_limit",
    "key": None,
    "limit": 60,
    "period_seconds": 60,
    "until": "2026-07-01T12:00:05.250000+00:00",
}
WORKER = "ui-controls-worker"


def worker_cue(name: str, **extra: Any) -> dict[str, Any]:
    """A ``POST /v1/cues`` body for a worker cue firing every 15 minutes."""
    return {
        "name": name,
        "transport": "worker",
        "payload": {"task": "summarise", "doc": 1, "lang": "en"},
        "schedule": {"type": "interval", "interval_seconds": 900},
        **extra,
    }


def test_operator_reads_controls_priority_and_what_a_run_waits_for(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"controls-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        limited = api.post("/v1/cues", json=worker_cue("summarise", **CONTROLS))
        assert limited.status_code == 201, limited.text
        cue = limited.json()
        plain = api.post("/v1/cues", json=worker_cue("plain")).json()
        sign_in(page, base, key, email)

        # the cues page: each cue's controls, the defaults said as such
        page.click("nav >> text=Cues")
        row = page.locator(f'#cues-table tr[data-cue-id="{cue["id"]}"] .cue-controls')
        expect(row.locator("[data-control=priority]")).to_have_text("priority 7")
        expect(row.locator("[data-control=concurrency]")).to_have_text(
            f"2 at once · key {HOSTILE_KEY}"
        )
        expect(row.locator("[data-control=rate-limit]")).to_have_text("60 per 60 s · key llm")
        expect(row.locator("[data-control=overlap]")).to_have_text("queue one while running")
        expect(row.locator("[data-control=required-keys]")).to_have_text("needs doc, lang")
        plain_row = page.locator(f'#cues-table tr[data-cue-id="{plain["id"]}"] .cue-controls')
        expect(plain_row).to_have_text("defaults")
        expect(page.locator("#view img")).to_have_count(0)
        screenshot(page, "ui-controls-cues", store)

        # a change through the API shows on the next refresh, a removed limit disappears
        api.patch(f"/v1/cues/{cue['id']}", json={"priority": -2, "concurrency": {}})
        expect(row.locator("[data-control=priority]")).to_have_text("priority -2")
        expect(row.locator("[data-control=concurrency]")).to_have_count(0)

        # the feed: each execution's priority; nothing holds these back
        first = api.post(f"/v1/cues/{cue['id']}/fire").json()["id"]
        second = api.post(f"/v1/cues/{plain['id']}/fire").json()["id"]
        page.click("nav >> text=Live feed")
        feed_row = page.locator(f'#feed-table tr[data-execution-id="{first}"]')
        expect(feed_row.locator(".priority")).to_have_text("-2")
        other = page.locator(f'#feed-table tr[data-execution-id="{second}"]')
        expect(other.locator(".priority")).to_have_text("0")
        expect(page.locator("#feed-table .waiting")).to_have_count(0)

        # the execution's page: its priority and its cue's controls
        feed_row.click()
        expect(page).to_have_url(f"{base}/ui/#/executions/{first}")
        summary = page.locator(".card", has_text="Summary")
        expect(summary.locator("div", has=page.locator("dt", has_text="Priority"))).to_contain_text(
            "-2"
        )
        waiting = summary.locator("div", has=page.locator("dt", has_text="Waiting for"))
        expect(waiting.locator("dd")).to_have_text("—")
        controls = page.locator("#run-controls")
        for text in ("queue one while running", "60 per 60 s · key llm", "doc, lang"):
            expect(controls).to_contain_text(text)
        expect(
            controls.locator("div", has=page.locator("dt", has_text="Concurrency"))
        ).to_contain_text("no limit")
        screenshot(page, "ui-controls-execution", store)

        # a flow's steps: each task step's controls, none on a wait step
        steps = [
            {"id": "fetch", "payload": {"task": "fetch"}},
            {
                "id": "each",
                "needs": ["fetch"],
                "for_each": "fetch",
                "payload": {"task": "summarise"},
                "priority": 3,
                "concurrency": {"limit": 4},
                "rate_limit": {"limit": 10, "period_seconds": 60, "key": "llm"},
            },
            {"id": "ok", "needs": ["each"], "type": "wait", "event": "ok", "timeout_seconds": 60},
        ]
        made = api.post("/v1/flows", json={"name": "digest", "steps": steps})
        assert made.status_code == 201, made.text
        page.goto(f"{base}/ui/#/flows/{made.json()['id']}")
        each = page.locator('#steps-table tr[data-step="each"] .step-controls')
        expect(each.locator("[data-control=priority]")).to_have_text("priority 3")
        expect(each.locator("[data-control=concurrency]")).to_have_text("4 at once")
        expect(each.locator("[data-control=rate-limit]")).to_have_text("10 per 60 s · key llm")
        expect(page.locator('#steps-table tr[data-step="fetch"] .step-controls')).to_have_text(
            "defaults"
        )
        expect(page.locator('#steps-table tr[data-step="ok"] .step-controls')).to_have_text("—")
        screenshot(page, "ui-controls-flow", store)
        assert not crashes, crashes
        assert page.evaluate("window.pwned") is None
    finally:
        page.close()
        api.close()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_what_a_held_back_run_waits_for_reads_as_words(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    base, _ = server
    page = browser.new_page(timezone_id="UTC")
    try:
        page.goto(f"{base}/ui/")
        words = page.evaluate(
            "async (cases) => { const { waitingText } = await import('./controls.js');"
            " return cases.map(waitingText); }",
            [
                None,
                HELD_BY_CONCURRENCY,
                {"reason": "concurrency", "key": None, "limit": 1, "until": None},
                HELD_BY_RATE,
                {"reason": "rate_limit", "key": "llm", "limit": 5, "until": None},
            ],
        )
        assert words == [
            None,
            "waiting: concurrency key llm (limit 2)",
            "waiting: concurrency (limit 1)",
            "waiting: rate limit (limit 60 per 60 s) until 12:00:05",
            "waiting: rate limit key llm (limit 5)",
        ]
    finally:
        page.close()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_operator_sets_and_removes_a_cues_controls_from_the_cues_page(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"controls-form-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        cue = api.post("/v1/cues", json=worker_cue("summarise")).json()
        sign_in(page, base, key, email)
        page.click("nav >> text=Cues")
        row = page.locator(f'#cues-table tr[data-cue-id="{cue["id"]}"]')
        expect(row.locator(".cue-controls")).to_have_text("defaults")

        # set every control in the form
        row.locator("[data-action=controls]").click()
        form = page.locator("#controls-form")
        expect(form).to_contain_text("summarise")
        form.locator("#control-overlap").select_option("cancel_other")
        form.locator("#control-priority").fill("12")
        form.locator("#control-concurrency-limit").fill("3")
        form.locator("#control-concurrency-key").fill("llm")
        form.locator("#control-rate-limit").fill("100")
        form.locator("#control-rate-period").fill("3600")
        form.locator("#control-required-keys").fill("doc, lang")
        screenshot(page, "ui-controls-form", store)
        form.locator("[data-action=save]").click()
        expect(page.locator("#controls-form")).to_have_count(0)
        expect(
            page.locator(".toast", has_text="Saved the run controls of summarise")
        ).to_be_visible()
        shown = api.get(f"/v1/cues/{cue['id']}").json()
        assert shown["overlap_policy"] == "cancel_other"
        assert shown["priority"] == 12
        assert shown["concurrency"] == {"limit": 3, "key": "llm"}
        assert shown["rate_limit"] == {"limit": 100, "period_seconds": 3600, "key": None}
        assert shown["required_payload_keys"] == ["doc", "lang"]
        controls = row.locator(".cue-controls")
        expect(controls.locator("[data-control=concurrency]")).to_have_text("3 at once · key llm")
        expect(controls.locator("[data-control=rate-limit]")).to_have_text("100 per 3600 s")

        # the form opens with the cue's controls; emptied limits are removed
        row.locator("[data-action=controls]").click()
        expect(form.locator("#control-concurrency-key")).to_have_value("llm")
        expect(form.locator("#control-required-keys")).to_have_value("doc, lang")
        form.locator("#control-concurrency-limit").fill("")
        form.locator("#control-concurrency-key").fill("")
        form.locator("#control-rate-limit").fill("")
        form.locator("#control-rate-period").fill("")
        form.locator("#control-required-keys").fill("")
        form.locator("[data-action=save]").click()
        expect(page.locator("#controls-form")).to_have_count(0)
        cleared = api.get(f"/v1/cues/{cue['id']}").json()
        assert cleared["concurrency"] is None and cleared["rate_limit"] is None
        assert cleared["required_payload_keys"] == [] and cleared["priority"] == 12
        expect(controls.locator("[data-control=concurrency]")).to_have_count(0)

        # what the form or the server refuses is said in the form, and nothing changes
        row.locator("[data-action=controls]").click()
        form.locator("#control-rate-limit").fill("5")
        form.locator("[data-action=save]").click()
        expect(form.locator(".form-error")).to_have_text(
            "A rate limit needs both a limit and a period"
        )
        form.locator("#control-rate-limit").fill("")
        form.locator("#control-priority").fill("5000")
        form.locator("[data-action=save]").click()
        expect(form.locator(".form-error")).to_contain_text("1000")
        form.locator("[data-action=cancel]").click()
        expect(page.locator("#controls-form")).to_have_count(0)
        assert api.get(f"/v1/cues/{cue['id']}").json()["priority"] == 12
        assert not crashes, crashes
    finally:
        page.close()
        api.close()


def claim_next(api: httpx.Client, task: str) -> str:
    """Claim the next due execution of ``task`` as a worker; returns its id."""
    claimed = api.post(
        "/v1/executions/claims", json={"worker_id": WORKER, "limit": 1, "task": task}
    )
    assert claimed.status_code == 200, claimed.text
    [item] = claimed.json()["claimed"]
    return str(item["execution_id"])


def clock_time(iso: str) -> str:
    """An ISO time as the dashboard shows it in a UTC browser: ``HH:MM:SS``."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).strftime("%H:%M:%S")


def test_a_held_back_run_says_what_it_waits_for_until_it_runs(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"held-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    page = browser.new_page(viewport={"width": 1500, "height": 900}, timezone_id="UTC")
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    try:
        one_at_a_time = {"concurrency": {"limit": 1, "key": "llm"}}
        llm = api.post("/v1/cues", json=worker_cue("llm-calls", **one_at_a_time)).json()
        hourly = {"payload": {"task": "mail"}, "rate_limit": {"limit": 1, "period_seconds": 3600}}
        mailer = api.post("/v1/cues", json=worker_cue("mailer", **hourly)).json()
        running, held = (api.post(f"/v1/cues/{llm['id']}/fire").json()["id"] for _ in range(2))
        sent, throttled = (api.post(f"/v1/cues/{mailer['id']}/fire").json()["id"] for _ in range(2))
        assert claim_next(api, "summarise") == running
        assert claim_next(api, "mail") == sent
        rate_wait = api.get(f"/v1/executions/{throttled}").json()["waiting_for"]
        assert rate_wait["reason"] == "rate_limit" and rate_wait["until"]
        until = clock_time(rate_wait["until"])

        sign_in(page, base, key, email)
        page.click("nav >> text=Live feed")
        held_row = page.locator(f'#feed-table tr[data-execution-id="{held}"]')
        expect(held_row.locator(".waiting")).to_have_text("waiting: concurrency key llm (limit 1)")
        throttled_row = page.locator(f'#feed-table tr[data-execution-id="{throttled}"]')
        expect(throttled_row.locator(".waiting")).to_have_text(
            f"waiting: rate limit (limit 1 per 3600 s) until {until}"
        )
        for claimed in (running, sent):
            row = page.locator(f'#feed-table tr[data-execution-id="{claimed}"]')
            expect(row.locator(".badge")).to_have_text("delivering")
            expect(row.locator(".waiting")).to_have_count(0)
        screenshot(page, "ui-controls-held", store)

        # the execution's page says it too
        throttled_row.click()
        summary = page.locator(".card", has_text="Summary")
        waiting = summary.locator("div", has=page.locator("dt", has_text="Waiting for"))
        expect(waiting.locator("dd")).to_have_text(f"rate limit (limit 1 per 3600 s) until {until}")

        # once the running one ends, the held one waits no more and is claimed
        page.click("nav >> text=Live feed")
        done = api.post(f"/v1/executions/{running}/outcome", json={"success": True})
        assert done.status_code == 200, done.text
        expect(held_row.locator(".waiting")).to_have_count(0)
        assert claim_next(api, "summarise") == held
        expect(held_row.locator(".badge")).to_have_text("delivering")
        assert not crashes, crashes
    finally:
        page.close()
        api.close()
