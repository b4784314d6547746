"""The dashboard in headless Chromium against a real ``cueflow serve``.

An operator signs in, watches a fired cue's execution appear and finish in the live feed
without a reload, reads its timeline, pauses, fires and deletes cues, sees the worker, and
replays a failure. Screenshots of each page land in ``build/screenshots/`` (paths printed).

Needs Playwright for Python and Debian's ``chromium`` (``CUEFLOW_CHROMIUM`` names another
binary); without them the test skips, unless ``CUEFLOW_REQUIRE_BROWSER=1`` (CI) makes it fail.
The set-up (browser, server, screenshots) is in ``tests/ui_support.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.ui_support import browser, screenshot, server  # noqa: F401  (fixtures)

WORKER = "ui-worker-1"


def worker_cue(name: str, schedule: dict[str, Any], task: str = "report") -> dict[str, Any]:
    """A ``POST /v1/cues`` body for a worker cue."""
    return {"name": name, "transport": "worker", "payload": {"task": task}, "schedule": schedule}


def test_operator_watches_a_run_live_and_manages_cues(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and crashes.append(message.text),
    )
    try:
        # sign in: a wrong key is refused, the right one is kept for this tab only
        page.goto(f"{base}/ui")
        expect(page.locator("#sign-in")).to_be_visible()
        screenshot(page, "ui-signin", store)
        page.fill("#api-key", "cue_sk_" + "0" * 32)
        page.click("#sign-in button[type=submit]")
        expect(page.locator(".form-error")).to_have_text("This API key is not valid.")
        page.fill("#api-key", key)
        page.click("#sign-in button[type=submit]")
        expect(page.locator(".account-email")).to_have_text(email)
        assert page.evaluate("sessionStorage.getItem('cueflow.apiKey')") == key
        assert page.evaluate("localStorage.length") == 0

        # the live feed: a fired cue's execution appears, then finishes, without a reload
        page.click("nav >> text=Live feed")
        expect(page.locator("#feed-table tr.empty")).to_be_visible()
        page.evaluate("window.sameDocument = true")
        report = api.post(
            "/v1/cues",
            json=worker_cue(
                "weekly-report",
                {"type": "recurring", "cron": "0 9 * * MON-FRI", "timezone": "America/New_York"},
            ),
        ).json()
        execution_id = api.post(f"/v1/cues/{report['id']}/fire").json()["id"]
        row = page.locator(f'#feed-table tr[data-execution-id="{execution_id}"]')
        expect(row).to_contain_text("weekly-report")
        expect(row.locator(".badge")).to_have_text("pending")

        api.post("/v1/worker/heartbeat", json={"worker_id": WORKER, "handlers": ["report"]})
        claim = api.post(f"/v1/executions/{execution_id}/claim", json={"worker_id": WORKER})
        assert claim.status_code == 200, claim.text
        beat = api.post(f"/v1/executions/{execution_id}/heartbeat", headers={"X-Worker-Id": WORKER})
        assert beat.status_code == 200, beat.text
        outcome = {
            "success": True,
            "result": "report mailed to 42 readers",
            "external_id": "msg-4711",
            "summary": "Weekly report delivered",
        }
        reported = api.post(f"/v1/executions/{execution_id}/outcome", json=outcome)
        assert reported.status_code == 200, reported.text
        expect(row.locator(".badge")).to_have_text("success")
        expect(row).to_contain_text(WORKER)
        expect(row).to_contain_text("report mailed to 42 readers")
        expect(row).to_contain_text("msg-4711")
        assert page.evaluate("window.sameDocument") is True, "the feed reloaded the page"
        screenshot(page, "ui-feed", store)

        # the execution's detail and timeline
        row.click()
        expect(page).to_have_url(f"{base}/ui/#/executions/{execution_id}")
        timeline = page.locator("#timeline li")
        for event in ("Fired", f"Claimed by {WORKER}", "Last heartbeat", "Outcome: success"):
            expect(timeline.filter(has_text=event)).to_have_count(1)
        expect(page.locator(".card", has_text="Evidence")).to_contain_text("msg-4711")
        screenshot(page, "ui-execution", store)

        # cues: schedules in words, pause from the UI, fire now, delete with confirmation
        hostile = "<b>cleanup</b> & co"
        every_15_min = {"type": "interval", "interval_seconds": 900}
        api.post("/v1/cues", json=worker_cue(hostile, every_15_min))
        every_5_min = {"type": "recurring", "cron": "*/5 * * * *"}
        doomed = api.post("/v1/cues", json=worker_cue("invoice-sync", every_5_min)).json()
        page.click("nav >> text=Cues")
        cue_row = page.locator(f'#cues-table tr[data-cue-id="{report["id"]}"]')
        expect(cue_row).to_contain_text("Every weekday at 09:00 (America/New_York)")
        expect(cue_row.locator("code")).to_have_text("0 9 * * MON-FRI")
        expect(page.locator("#cues-table tr", has_text="cleanup")).to_contain_text(hostile)
        expect(page.locator("#cues-table b")).to_have_count(0)

        cue_row.locator("[data-action=pause]").click()
        expect(cue_row.locator(".cue-status")).to_have_text("paused")
        assert api.get(f"/v1/cues/{report['id']}").json()["status"] == "paused"
        expect(cue_row.locator("[data-action=resume]")).to_be_visible()

        cue_row.locator("[data-action=fire]").click()
        expect(page.locator(".toast", has_text="Fired weekly-report")).to_be_visible()
        runs = api.get("/v1/executions", params={"cue_id": report["id"]}).json()
        assert runs["total"] == 2

        doomed_row = page.locator(f'#cues-table tr[data-cue-id="{doomed["id"]}"]')
        doomed_row.locator("[data-action=delete]").click()
        page.click("dialog.confirm [data-action=cancel]")
        expect(page.locator("dialog.confirm")).to_have_count(0)
        assert api.get(f"/v1/cues/{doomed['id']}").status_code == 200
        doomed_row.locator("[data-action=delete]").click()
        expect(page.locator("dialog.confirm")).to_contain_text("invoice-sync")
        page.click("dialog.confirm [data-action=confirm]")
        expect(doomed_row).to_have_count(0)
        assert api.get(f"/v1/cues/{doomed['id']}").status_code == 404
        screenshot(page, "ui-cues", store)

        # workers and their heartbeat status
        page.click("nav >> text=Workers")
        worker_row = page.locator(f'#workers-table tr[data-worker-id="{WORKER}"]')
        expect(worker_row.locator(".badge")).to_have_text("active")
        screenshot(page, "ui-workers", store)

        # failures in a row are listed with their alert, and replayed from the failures page
        failed = [runs["executions"][0]["id"]]
        failed += [api.post(f"/v1/cues/{report['id']}/fire").json()["id"] for _ in range(2)]
        for execution in failed:
            api.post(f"/v1/executions/{execution}/claim", json={"worker_id": WORKER})
            api.post(
                f"/v1/executions/{execution}/outcome", json={"success": False, "error": "SMTP down"}
            )
        page.click("nav >> text=Failures")
        expect(page.locator("#failed-table tbody tr")).to_have_count(3)
        expect(
            page.locator("#alerts-table tbody tr", has_text="consecutive failures")
        ).to_have_count(1)
        failed_row = page.locator(f'#failed-table tr[data-execution-id="{failed[0]}"]')
        expect(failed_row).to_contain_text("SMTP down")
        screenshot(page, "ui-failures", store)
        failed_row.locator("[data-action=replay]").click()
        expect(page.locator("#timeline")).to_contain_text("replayed")
        replayed = api.get("/v1/executions", params={"cue_id": report["id"]}).json()
        assert replayed["total"] == 5
        assert replayed["executions"][0]["triggered_by"] == "replay"
        assert page.url.endswith(f"#/executions/{replayed['executions'][0]['id']}")

        # signing out forgets the key
        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('cueflow.apiKey')") is None
        assert not crashes, crashes
    finally:
        page.close()
        api.close()


CRON_WORDS = {
    "*/5 * * * *": "Every 5 minutes",
    "0 * * * *": "Every hour, on the hour",
    "0 */2 * * *": "Every 2 hours",
    "30 8 * * 1-5": "Every weekday at 08:30",
    "0 9 * * 1,3,5": "Every Monday, Wednesday and Friday at 09:00",
    "0 9,17 * * *": "Every day at 09:00 and 17:00",
    "0 0 1 * *": "On day 1 of every month at 00:00",
    "0 0 25 12 *": "Every year on December 25 at 00:00",
    "5 4 * * 0": "Every Sunday at 04:05",
    "0 9 L * *": "Custom schedule",
}


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_common_cron_shapes_read_as_words(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    base, _ = server
    page = browser.new_page()
    try:
        page.goto(f"{base}/ui/")
        words = page.evaluate(
            "async (crons) => { const { describeCron } = await import('./cron.js');"
            " return crons.map(describeCron); }",
            list(CRON_WORDS),
        )
        assert dict(zip(CRON_WORDS, words, strict=True)) == CRON_WORDS
    finally:
        page.close()
