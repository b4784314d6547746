"""Flows and runs in the dashboard, in headless Chromium against a real ``cueflow serve``.

An operator finds a flow, reads its graph, starts a run with a JSON input, watches the run's
graph change colour as a worker finishes the first step, approves the wait step with its
button and sees the run go on to the end; a rejection fails the next run, cancel ends a third,
and the runs list filters by status. Names, event names and outputs full of markup stay text.
Screenshots land in ``build/screenshots/``.

Uses the browser and server fixtures of ``tests/ui_support.py`` (skipped without
Playwright and Chromium unless ``CUEFLOW_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.ui_support import browser, screenshot, server, sign_in  # noqa: F401  (fixtures)

WORKER = "ui-flow-worker"
HOSTILE_FLOW = '<img src=x onerror="window.pwned=1">launch & "review"'
HOSTILE_EVENT = '<img src=x onerror="window.pwned=3"><b>signed-off & ok?'
"""No "/" in it: the API's path cannot carry one (a %2F arrives decoded)."""
HOSTILE_OUTPUT = {"html": "<script>window.pwned=2</script>", "note": "<b>draft ready</b>"}
APPROVED_ONLY = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"const": True}},
}


def approval_flow() -> dict[str, Any]:
    """A worker step, a wait step whose contract only an approval meets, a worker step."""
    return {
        "name": HOSTILE_FLOW,
        "description": "<em>draft</em>, sign-off, publish",
        "steps": [
            {"id": "draft", "transport": "worker", "payload": {"task": "draft"}},
            {
                "id": "review",
                "needs": ["draft"],
                "type": "wait",
                "event": HOSTILE_EVENT,
                "timeout_seconds": 3600,
                "output_schema": APPROVED_ONLY,
            },
            {"id": "publish", "needs": ["review"], "payload": {"task": "publish"}},
        ],
    }


def work(api: httpx.Client, task: str, output: Any) -> dict[str, Any]:
    """Claim the due execution of ``task`` as a worker and report success with ``output``."""
    claimed = api.post(
        "/v1/executions/claims", json={"worker_id": WORKER, "limit": 1, "task": task}
    )
    assert claimed.status_code == 200, claimed.text
    items = claimed.json()["claimed"]
    assert items, f"nothing to claim for {task}"
    item: dict[str, Any] = items[0]
    reported = api.post(
        f"/v1/executions/{item['execution_id']}/outcome", json={"success": True, "output": output}
    )
    assert reported.status_code == 200, reported.text
    return item


def node(page: Any, step: str) -> Any:
    """The run graph's node of ``step``."""
    return page.locator(f'#run-graph g.flow-node[data-step="{step}"]')


def test_operator_starts_a_run_approves_its_wait_and_rejects_another(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    base, store = server
    email = f"flows-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    crashes: list[str] = []
    page.on("pageerror", lambda error: crashes.append(str(error)))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and crashes.append(message.text),
    )
    try:
        created = api.post("/v1/flows", json=approval_flow())
        assert created.status_code == 201, created.text
        flow = created.json()
        sign_in(page, base, key, email)

        # the flows list: the hostile name is text, nothing of it became markup
        page.click("nav >> text=Flows")
        flow_row = page.locator(f'#flows-table tr[data-flow-id="{flow["id"]}"]')
        expect(flow_row).to_contain_text(HOSTILE_FLOW)
        expect(flow_row).to_contain_text("<em>draft</em>, sign-off, publish")
        expect(page.locator("#view img, #view em, #view b")).to_have_count(0)

        # the flow's page: its graph, its steps, and a run started with a JSON input
        flow_row.locator("[data-action=open]").click()
        expect(page.locator("h1")).to_have_text(HOSTILE_FLOW)
        graph = page.locator(".flow-graph g.flow-node")
        expect(graph).to_have_count(3)
        expect(page.locator(".flow-graph path.flow-edge")).to_have_count(2)
        expect(page.locator('#steps-table tr[data-step="review"]')).to_contain_text(HOSTILE_EVENT)
        screenshot(page, "ui-flow", store)
        page.fill("#run-input", "{not json")
        page.click("#start-run button[type=submit]")
        expect(page.locator("#start-run .form-error")).to_contain_text("not valid JSON")
        page.fill("#run-input", json.dumps({"title": "<h1>Launch</h1>"}))
        page.click("#start-run button[type=submit]")
        expect(page).to_have_url(re.compile(r"#/runs/run_[a-z0-9]+$"))
        expect(page.locator(".run-status")).to_have_text("running")
        run_id = page.url.rsplit("/", 1)[1]
        run = api.get(f"/v1/flow-runs/{run_id}").json()
        assert run["flow_id"] == flow["id"]
        assert run["input"] == {"title": "<h1>Launch</h1>"}
        expect(node(page, "draft")).to_have_attribute("data-status", "running")
        expect(node(page, "review")).to_have_attribute("data-status", "pending")
        expect(page.locator("#approvals")).to_have_count(0)

        # a worker finishes step 1: its node turns succeeded and the wait node offers Approve
        page.evaluate("window.sameDocument = true")
        draft = work(api, "draft", HOSTILE_OUTPUT)
        expect(node(page, "draft")).to_have_attribute("data-status", "succeeded")
        expect(node(page, "review")).to_have_attribute("data-status", "waiting")
        expect(page.locator(".run-status")).to_have_text("waiting")
        approvals = page.locator('#approvals .approval[data-step="review"]')
        expect(approvals).to_contain_text(HOSTILE_EVENT)
        expect(approvals.locator("[data-action=approve]")).to_be_visible()

        # the first step's details: output as text, attempts, a link to its execution
        node(page, "draft").click()
        detail = page.locator('#step-detail[data-step="draft"]')
        expect(detail).to_contain_text("<script>window.pwned=2</script>")
        expect(detail).to_contain_text("<b>draft ready</b>")
        expect(detail.locator(f'a[data-execution-id="{draft["execution_id"]}"]')).to_be_visible()
        expect(page.locator("#view script, #view img, #view b")).to_have_count(0)
        expect(page.locator("#view h1")).to_have_count(1)
        screenshot(page, "ui-run-waiting", store)
        detail.locator(f'a[data-execution-id="{draft["execution_id"]}"]').click()
        expect(page.locator("#timeline")).to_contain_text(f"Claimed by {WORKER}")
        page.go_back()

        # Approve sends the event; the run goes on, and ends when the last step is done
        approvals.locator("[data-action=approve]").click()
        expect(page.locator(".toast", has_text="Approved: review")).to_be_visible()
        expect(node(page, "review")).to_have_attribute("data-status", "succeeded")
        expect(node(page, "publish")).to_have_attribute("data-status", "running")
        expect(page.locator("#approvals")).to_have_count(0)
        expect(page.locator("#graph-note")).to_have_count(0)
        run = api.get(f"/v1/flow-runs/{run_id}").json()
        assert run["steps"]["review"]["output"] == {"approved": True}
        published = work(api, "publish", {"url": "https://example.com/launch"})
        assert published["payload"]["flow"]["parents"] == {"review": {"approved": True}}
        expect(page.locator(".run-status")).to_have_text("succeeded")
        expect(node(page, "publish")).to_have_attribute("data-status", "succeeded")
        expect(page.locator("[data-action=cancel-run]")).to_have_count(0)
        assert page.evaluate("window.sameDocument") is True, "the run page reloaded"
        screenshot(page, "ui-run-succeeded", store)

        # Reject: the wait step's contract refuses it, so the step and the run fail
        second = api.post(f"/v1/flows/{flow['id']}/runs", json={"input": {}}).json()
        work(api, "draft", {"text": "v2"})
        page.goto(f"{base}/ui/#/runs/{second['id']}")
        expect(node(page, "review")).to_have_attribute("data-status", "waiting")
        node(page, "review").click()
        page.locator("#step-detail [data-action=reject]").click()
        expect(node(page, "review")).to_have_attribute("data-status", "failed")
        expect(node(page, "publish")).to_have_attribute("data-status", "skipped")
        expect(page.locator(".run-status")).to_have_text("failed")
        expect(page.locator("#step-detail .step-error")).not_to_be_empty()
        rejected = api.get(f"/v1/flow-runs/{second['id']}").json()
        assert rejected["status"] == "failed"
        assert rejected["steps"]["review"]["error"]["output"] == {"approved": False}
        screenshot(page, "ui-run-rejected", store)

        # Cancel run, after a confirmation
        third = api.post(f"/v1/flows/{flow['id']}/runs", json={"input": {}}).json()
        page.goto(f"{base}/ui/#/runs/{third['id']}")
        expect(node(page, "draft")).to_have_attribute("data-status", "running")
        page.click("[data-action=cancel-run]")
        page.click("dialog.confirm [data-action=confirm]")
        expect(page.locator(".run-status")).to_have_text("cancelled")
        expect(node(page, "draft")).to_have_attribute("data-status", "cancelled")
        assert api.get(f"/v1/flow-runs/{third['id']}").json()["status"] == "cancelled"

        # the runs list, filtered by status and by flow
        page.click("nav >> text=Runs")
        rows = page.locator("#runs-table tbody tr[data-run-id]")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text(HOSTILE_FLOW)
        page.click('.chips [data-status="failed"]')
        expect(rows).to_have_count(1)
        expect(page.locator(f'#runs-table tr[data-run-id="{second["id"]}"]')).to_be_visible()
        assert page.url.endswith("#/runs?status=failed")
        page.select_option("#runs-flow", flow["id"])
        expect(rows).to_have_count(1)
        page.click('.chips [data-status=""]')
        expect(rows).to_have_count(3)
        screenshot(page, "ui-runs", store)
        edit = api.patch(f"/v1/flows/{flow['id']}", json={"description": "edited"})
        assert edit.status_code == 200, edit.text
        page.locator(f'#runs-table tr[data-run-id="{run_id}"]').click()
        expect(page.locator(".run-status")).to_have_text("succeeded")
        expect(page.locator("#graph-note")).to_contain_text("edited after this run started")

        assert page.evaluate("window.pwned") is None
        assert not crashes, crashes
    finally:
        page.close()
        api.close()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_steps_are_laid_out_in_columns_by_depth_and_drawn_as_text(
    browser: Any,  # noqa: F811
    server: tuple[str, str],  # noqa: F811
) -> None:
    base, _ = server
    page = browser.new_page()
    try:
        page.goto(f"{base}/ui/")
        steps = [
            {"id": "fetch"},
            {"id": "left", "needs": ["fetch"]},
            {"id": "right", "needs": ["fetch"]},
            {"id": "join", "needs": ["left", "right"]},
            {"id": "tail", "needs": ["fetch", "join"]},
            {"id": "loop-a", "needs": ["loop-b"]},
            {"id": "loop-b", "needs": ["loop-a", "nowhere"]},
        ]
        placed = page.evaluate(
            "async (steps) => { const { layout } = await import('./graph.js');"
            " const drawn = layout(steps);"
            " return { columns: Object.fromEntries(drawn.nodes.map((n) => [n.id, n.column])),"
            " edges: drawn.edges.length }; }",
            steps,
        )
        assert placed["columns"] == {
            "fetch": 0,
            "left": 1,
            "right": 1,
            "join": 2,
            "tail": 3,
            "loop-a": 2,
            "loop-b": 1,
        }
        assert placed["edges"] == 8

        drawn = page.evaluate(
            "async () => { const { flowGraph } = await import('./graph.js');"
            " const svg = flowGraph([{ id: '<b>a</b>' }, { id: 'each', needs: ['<b>a</b>'] }],"
            " { '<b>a</b>': { status: 'succeeded', attempts: 1 }, each: { status: 'running',"
            " attempts: 3, items: [{ status: 'succeeded' }, { status: 'running' }] } });"
            " return { bold: svg.querySelectorAll('b').length,"
            " labels: [...svg.querySelectorAll('g.flow-node')].map((g) => g.textContent) }; }"
        )
        assert drawn["bold"] == 0
        assert drawn["labels"] == [
            "<b>a</b> — succeeded<b>a</b>succeeded",
            "each — runningeachrunning · 1/2 items",
        ]
    finally:
        page.close()
