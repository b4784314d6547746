"""The dashboard's overview and live updates in headless Chromium against a real
``cueflow serve``: the overview draws its charts (vendored uPlot) from
``GET /v1/stats/overview`` for the last hour and day; the live feed is updated by the server's
pushed events (``GET /v1/events/stream``) and falls back to polling when a proxy cuts the
stream. Screenshots land in ``build/screenshots/``.

Uses the browser and server fixtures of ``tests/ui_support.py`` (skipped without Playwright and
Chromium unless ``CUEFLOW_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.ui_support import browser, screenshot, server, sign_in  # noqa: F401  (fixtures)

WORKER = "ui-overview-worker"


def worker_cue(name: str) -> dict[str, Any]:
    """A ``POST /v1/cues`` body for a worker cue firing every 15 minutes."""
    return {
        "name": name,
        "transport": "worker",
        "payload": {"task": "report"},
        "schedule": {"type": "interval", "interval_seconds": 900},
    }


def _account(base: str) -> tuple[str, str, httpx.Client]:
    email = f"overview-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    return (
        email,
        key,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30),
    )


def _watch(page: Any) -> list[str]:
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and crashes.append(message.text),
    )
    return crashes


def test_operator_reads_the_overview_of_the_last_hour_and_day(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email, key, api = _account(base)
    cue = api.post("/v1/cues", json=worker_cue("nightly")).json()
    for _ in range(3):
        assert api.post(f"/v1/cues/{cue['id']}/fire").status_code == 200
    [first, second, _] = api.get("/v1/executions", params={"cue_id": cue["id"]}).json()[
        "executions"
    ]
    for execution, success in ((first, True), (second, False)):
        claimed = api.post(f"/v1/executions/{execution['id']}/claim", json={"worker_id": WORKER})
        assert claimed.status_code == 200, claimed.text
        reported = api.post(f"/v1/executions/{execution['id']}/outcome", json={"success": success})
        assert reported.status_code == 200, reported.text
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    crashes = _watch(page)
    try:
        sign_in(page, base, key, email)
        page.click("nav >> text=Overview")
        expect(page.locator("#stat-executions .stat-value")).to_have_text("3")
        expect(page.locator("#stat-executions")).to_contain_text("50 % succeeded")
        expect(page.locator("#stat-queue .stat-value")).to_have_text("1")
        expect(page.locator("#stat-lag")).to_contain_text("2 measured")
        for chart in ("chart-executions", "chart-lag", "chart-latency", "chart-waiting"):
            expect(page.locator(f"#{chart} canvas")).to_have_count(1)
            expect(page.locator(f"#{chart} .u-legend")).to_be_visible()
        expect(page.locator("#chart-executions .u-legend")).to_contain_text("success")
        expect(
            page.locator("#chart-queue .queue-row[data-status=pending] .queue-count")
        ).to_have_text("1")
        assert page.locator("#chart-executions canvas").bounding_box()["width"] > 300
        screenshot(page, "ui-overview-hour", store)

        page.click("[data-window='24h']")
        expect(page.locator("[data-window='24h']")).to_have_attribute("aria-pressed", "true")
        expect(page.locator(".muted.small >> text=One point per 15 minutes")).to_be_visible()
        expect(page.locator("#stat-executions .stat-value")).to_have_text("3")
        screenshot(page, "ui-overview-day", store)
        assert not crashes, crashes
    finally:
        page.close()
        api.close()


def test_the_feed_is_pushed_by_the_server_and_polls_when_the_stream_is_cut(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email, key, api = _account(base)
    cue = api.post("/v1/cues", json=worker_cue("pushed")).json()
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    crashes = _watch(page)
    streams: list[str] = []
    page.on(
        "request",
        lambda request: "/v1/events/stream" in request.url and streams.append(request.url),
    )
    try:
        sign_in(page, base, key, email)
        page.click("nav >> text=Live feed")
        expect(page.locator(".live-mode")).to_have_attribute("data-mode", "live")
        polled: list[str] = []
        page.on(
            "request",
            lambda request: "/v1/executions?" in request.url and polled.append(request.url),
        )
        run = api.post(f"/v1/cues/{cue['id']}/fire").json()
        row = page.locator(f"#feed-table tr[data-execution-id='{run['id']}']")
        expect(row).to_be_visible()  # pushed: the page does not poll while the stream is up
        expect(row).to_have_attribute("data-status", "pending")
        api.post(f"/v1/executions/{run['id']}/claim", json={"worker_id": WORKER})
        api.post(f"/v1/executions/{run['id']}/outcome", json={"success": True})
        expect(row).to_have_attribute("data-status", "success")
        assert len(polled) <= 4, polled  # one load per pushed change, not one every 1.5 s
        screenshot(page, "ui-feed-live", store)

        # a proxy cuts the stream: the page polls instead, and says so
        page.route("**/v1/events/stream", lambda route: route.abort())
        page.evaluate("location.hash = '#/cues'")
        page.click("nav >> text=Live feed")
        expect(page.locator(".live-mode")).to_have_attribute("data-mode", "polling")
        second = api.post(f"/v1/cues/{cue['id']}/fire").json()
        expect(page.locator(f"#feed-table tr[data-execution-id='{second['id']}']")).to_be_visible()
        screenshot(page, "ui-feed-polling", store)

        # the stream comes back: live again
        page.unroute("**/v1/events/stream")
        expect(page.locator(".live-mode")).to_have_attribute("data-mode", "live")
        assert streams
        assert not crashes, crashes
    finally:
        page.close()
        api.close()
