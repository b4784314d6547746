"""Flow runs through the worker protocol over HTTP, on both stores: a chain hands each step's
output to the next, fan-out and fan-in with ``for_each``, ``when`` rules, output contracts and
the retry's ``previous_failure``, idempotent starts, cancel."""

from __future__ import annotations

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.flows_support import claim_next, create_flow, finish, run_of, start, task, work
from tests.helpers import assert_error


async def test_a_three_step_chain_passes_each_output_to_the_next_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a"), task("c", "b")])
    run = await start(client, auth, flow["id"], input={"n": 1})
    assert run["status"] == "running"
    assert run["steps"]["a"]["status"] == "running"
    assert run["steps"]["b"]["status"] == "pending"

    first = await work(client, auth, "a", output={"x": 2})
    assert first["payload"]["task"] == "a"
    assert first["payload"]["flow"] == {
        "run_id": run["id"],
        "flow_id": flow["id"],
        "step": "a",
        "input": {"n": 1},
        "parents": {},
        "attempt": 1,
        "previous_failure": None,
    }
    second = await work(client, auth, "b", result="plain text")
    assert second["payload"]["flow"]["parents"] == {"a": {"x": 2}}
    third = await work(client, auth, "c", output=[1, 2])
    assert third["payload"]["flow"]["parents"] == {"b": "plain text"}

    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    assert done["finished_at"] is not None
    assert done["steps"]["c"]["output"] == [1, 2]
    assert done["steps"]["a"]["execution_ids"] == [first["execution_id"]]
    assert done["steps"]["a"]["attempts"] == 1


async def test_step_executions_show_and_filter_by_run_and_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    run = await start(client, auth, flow["id"])
    item = await work(client, auth, "a", output={"k": 1})
    listed = await client.get(
        "/v1/executions", params={"flow_run_id": run["id"], "step_id": "a"}, headers=auth
    )
    assert [e["id"] for e in listed.json()["executions"]] == [item["execution_id"]]
    shown = listed.json()["executions"][0]
    assert (shown["flow_run_id"], shown["step_id"]) == (run["id"], "a")
    assert shown["outcome"]["output"] == {"k": 1}
    every = await client.get("/v1/executions", params={"flow_run_id": run["id"]}, headers=auth)
    assert every.json()["total"] == 2


async def test_hidden_step_cues_are_not_listed_as_cues(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create_flow(client, auth, [task("a"), task("b", "a")])
    cues = await client.get("/v1/cues", headers=auth)
    assert cues.json()["cues"] == []
    usage = await client.get("/v1/usage", headers=auth)
    assert usage.status_code == 200, usage.text
    assert "cue_step" not in usage.text


async def test_for_each_fans_out_one_execution_per_item_and_fans_in_their_outputs(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client,
        auth,
        [task("list"), task("each", "list", for_each="list"), task("sum", "each")],
    )
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=[10, 20, 30])
    seen = []
    for _ in range(3):
        item = await claim_next(client, auth, "each")
        assert item is not None
        flow_part = item["payload"]["flow"]
        seen.append((flow_part["item_index"], flow_part["item"]))
        response = await finish(client, auth, item["execution_id"], output=flow_part["item"] + 1)
        assert response.status_code == 200
    assert sorted(seen) == [(0, 10), (1, 20), (2, 30)]
    last = await work(client, auth, "sum")
    assert last["payload"]["flow"]["parents"] == {"each": [11, 21, 31]}
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    assert [i["status"] for i in done["steps"]["each"]["items"]] == ["succeeded"] * 3
    assert len(done["steps"]["each"]["execution_ids"]) == 3


async def test_for_each_over_an_empty_array_succeeds_at_once_with_an_empty_output(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("list"), task("each", "list", for_each="list")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=[])
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    assert done["steps"]["each"]["output"] == []


async def test_for_each_over_something_else_than_an_array_fails_the_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("list"), task("each", "list", for_each="list")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output={"not": "a list"})
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "failed"
    assert done["steps"]["each"]["error"]["type"] == "for_each"


async def test_a_failed_step_runs_its_failure_handler_and_skips_its_success_path(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client,
        auth,
        [
            task("charge"),
            task("ship", "charge"),
            task("refund", "charge", when="failure"),
            task("report", "ship", "refund", when="always"),
        ],
    )
    run = await start(client, auth, flow["id"])
    await work(client, auth, "charge", success=False, error="card declined")
    refund = await work(client, auth, "refund")
    assert refund["payload"]["flow"]["parents"] == {"charge": None}
    await work(client, auth, "report")
    done = await run_of(client, auth, run["id"])
    steps = {name: step["status"] for name, step in done["steps"].items()}
    assert steps == {
        "charge": "failed",
        "ship": "skipped",
        "refund": "succeeded",
        "report": "succeeded",
    }
    assert done["steps"]["charge"]["error"]["reason"] == "card declined"
    assert done["status"] == "failed"


async def test_a_succeeded_step_skips_its_failure_handler(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client, auth, [task("charge"), task("refund", "charge", when="failure")]
    )
    run = await start(client, auth, flow["id"])
    await work(client, auth, "charge")
    done = await run_of(client, auth, run["id"])
    assert done["steps"]["refund"]["status"] == "skipped"
    assert done["status"] == "succeeded"


OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"total": {"type": "integer"}},
    "required": ["total"],
}


async def test_an_output_breaking_its_contract_fails_the_attempt_and_the_retry_sees_why(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    step = task("add", output_schema=OUTPUT_SCHEMA, retry={"max_attempts": 2})
    step["retry"]["backoff_minutes"] = [1]
    flow = await create_flow(client, auth, [step, task("next", "add")])
    run = await start(client, auth, flow["id"])
    first = await work(client, auth, "add", output={"total": "many"})
    assert await claim_next(client, auth, "add") is None  # the retry waits for its backoff
    clock.advance(minutes=1)
    second = await claim_next(client, auth, "add")
    assert second is not None
    assert second["execution_id"] != first["execution_id"]
    flow_part = second["payload"]["flow"]
    assert flow_part["attempt"] == 2
    assert flow_part["output_schema"] == OUTPUT_SCHEMA  # a worker (an agent) sees the contract
    failure = flow_part["previous_failure"]
    assert failure["type"] == "output_contract"
    assert failure["attempt"] == 1
    assert failure["output"] == {"total": "many"}
    assert "total" in failure["reason"] and "integer" in failure["reason"]
    assert (
        await finish(client, auth, second["execution_id"], output={"total": 3})
    ).status_code == 200
    shown = await run_of(client, auth, run["id"])
    assert shown["steps"]["add"]["attempts"] == 2
    assert shown["steps"]["add"]["output"] == {"total": 3}
    assert shown["steps"]["next"]["status"] == "running"


async def test_a_contract_failure_with_no_attempt_left_fails_the_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("add", output_schema=OUTPUT_SCHEMA)])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "add", output=["wrong"])
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "failed"
    assert done["steps"]["add"]["error"]["type"] == "output_contract"


async def test_the_same_idempotency_key_starts_one_run(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    first = await start(client, auth, flow["id"], input=1, idempotency_key="k1")
    again = await client.post(
        f"/v1/flows/{flow['id']}/runs", json={"input": 1, "idempotency_key": "k1"}, headers=auth
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    runs = await client.get("/v1/flow-runs", params={"flow_id": flow["id"]}, headers=auth)
    assert runs.json()["total"] == 1
    executions = await client.get("/v1/executions", headers=auth)
    assert executions.json()["total"] == 1


async def test_input_refused_by_the_input_schema_is_400(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    schema = {"type": "object", "required": ["n"]}
    flow = await create_flow(client, auth, [task("a")], input_schema=schema)
    response = await client.post(f"/v1/flows/{flow['id']}/runs", json={"input": {}}, headers=auth)
    assert_error(response, 400, "invalid_input")


async def test_cancel_is_final_and_reaches_the_holder_through_its_lease(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b")])
    run = await start(client, auth, flow["id"])
    held = await claim_next(client, auth, "a")
    assert held is not None
    cancelled = await client.post(f"/v1/flow-runs/{run['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["steps"].values()} == {"cancelled"}
    assert await claim_next(client, auth, "b") is None  # its pending execution was cancelled
    beat = await client.post(
        f"/v1/executions/{held['execution_id']}/heartbeat",
        json={"worker_id": "w1"},
        headers=auth,
    )
    assert_error(beat, 409, "flow_run_cancelled")
    late = await finish(client, auth, held["execution_id"], output=1)
    assert_error(late, 409, "flow_run_cancelled")
    again = await client.post(f"/v1/flow-runs/{run['id']}/cancel", headers=auth)
    assert_error(again, 409, "flow_run_finished")
    after = await run_of(client, auth, run["id"])
    assert after["status"] == "cancelled"
    assert after["steps"]["a"]["status"] == "cancelled"


async def test_runs_are_listed_and_filtered_by_status(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "a")
    await start(client, auth, flow["id"])
    done = await client.get("/v1/flow-runs", params={"status": "succeeded"}, headers=auth)
    assert [r["id"] for r in done.json()["runs"]] == [run["id"]]
    assert (await client.get("/v1/flow-runs", headers=auth)).json()["total"] == 2


async def test_another_accounts_run_is_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    run = await start(client, auth, flow["id"])
    assert_error(
        await client.get(f"/v1/flow-runs/{run['id']}", headers=other_auth),
        404,
        "flow_run_not_found",
    )
    assert_error(
        await client.post(f"/v1/flows/{flow['id']}/runs", json={}, headers=other_auth),
        404,
        "flow_not_found",
    )
