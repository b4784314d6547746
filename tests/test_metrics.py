"""``GET /metrics``: the Prometheus series move when cues fire, workers claim and race, leases
run out, outcomes are reported, webhooks are delivered and retried, and requests are served;
every metric is documented. Time moves on the injected fake clock."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cueflow import __version__
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.metrics import Metrics
from cueflow.states import Event, move
from tests.conftest import make_settings
from tests.server import cueflow_server
from tests.webhook_support import Receiver, api, fire, new_user, open_engine

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
LEASE = 900
HEARTBEAT_TIMEOUT = 180
EXECUTION_ROUTE = "/v1/executions/{execution_id}"


class Samples:
    """The samples of one scrape, by name and labels."""

    def __init__(self, text: str) -> None:
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        """The value of one sample (0 when the series does not exist yet)."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        """The label sets ``name`` has samples for."""
        return [dict(labels) for (sample, labels) in self.values if sample == name]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """``GET /metrics``, checked for status and content type, parsed."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Samples(response.text)


async def worker_cue(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock, delay: float = 60
) -> dict[str, Any]:
    """A one-time worker cue due ``delay`` seconds from now."""
    body = {
        "name": f"job-{uuid.uuid4().hex[:8]}",
        "transport": "worker",
        "schedule": {"type": "once", "at": (clock.now() + timedelta(seconds=delay)).isoformat()},
        "payload": {"task": "job"},
    }
    response = await client.post("/v1/cues", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def due_execution(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> str:
    """Fire a worker cue due in 60 s; the execution's id."""
    cue = await worker_cue(client, auth, clock)
    clock.advance(60)
    assert await engine.fire_due() == 1
    response = await client.get("/v1/executions", params={"cue_id": cue["id"]}, headers=auth)
    return str(response.json()["executions"][0]["id"])


async def claim(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, worker: str
) -> httpx.Response:
    return await client.post(
        f"/v1/executions/{execution_id}/claim", json={"worker_id": worker}, headers=auth
    )


async def test_scrape_needs_no_key_and_lists_every_metric(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)

    assert samples("cueflow_database_up") == 1
    assert samples("cueflow_build_info", version=__version__) == 1
    for queue in ("pending_outbox", "pending_worker_claims", "pending_retries"):
        assert samples.labels_of("cueflow_queue_depth").count({"queue": queue}) == 1
    assert samples("cueflow_scheduler_overdue_seconds") == 0


async def test_firing_counts_executions_and_observes_the_scheduler_lag(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    await worker_cue(client, auth, clock, delay=60)
    await worker_cue(client, auth, clock, delay=62)
    clock.advance(65)

    assert await engine.fire_due() == 2

    samples = await scrape(client)
    assert samples("cueflow_fires_total", transport="worker", status="pending") == 2
    assert samples("cueflow_scheduler_lag_seconds_count") == 2
    assert samples("cueflow_scheduler_lag_seconds_sum") == pytest.approx(5 + 3)
    assert samples("cueflow_scheduler_lag_seconds_bucket", le="5.0") == 2
    assert samples("cueflow_scheduler_lag_seconds_bucket", le="2.5") == 0
    assert samples("cueflow_queue_depth", queue="pending_worker_claims") == 2


async def test_overdue_cues_and_refired_fire_keys_show(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    await worker_cue(client, auth, clock, delay=60)
    clock.advance(90)

    assert (await scrape(client))("cueflow_scheduler_overdue_seconds") == 30
    await engine.fire_due()
    await engine.fire_due()  # nothing left: no double count
    samples = await scrape(client)
    assert samples("cueflow_scheduler_overdue_seconds") == 0
    assert samples("cueflow_fires_total", transport="worker", status="pending") == 1


async def test_claims_conflicts_and_outcomes_are_counted(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    execution_id = await due_execution(client, auth, engine, clock)

    assert (await claim(client, auth, execution_id, "worker-a")).status_code == 200
    assert (await claim(client, auth, execution_id, "worker-b")).status_code == 409
    empty = await client.post("/v1/executions/claim", json={"worker_id": "c"}, headers=auth)
    assert empty.status_code == 409
    outcome = await client.post(
        f"/v1/executions/{execution_id}/outcome", json={"success": True}, headers=auth
    )
    assert outcome.status_code == 200, outcome.text

    samples = await scrape(client)
    assert samples("cueflow_claims_total") == 1
    assert samples("cueflow_claim_conflicts_total", mode="execution") == 1
    assert samples("cueflow_claim_conflicts_total", mode="next") == 1
    assert samples("cueflow_outcomes_total", transport="worker", success="true") == 1
    assert samples("cueflow_outcomes_total", transport="worker", success="false") == 0


async def test_batch_claims_and_outcomes_are_counted_like_single_ones(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    first = await due_execution(client, auth, engine, clock)
    second = await due_execution(client, auth, engine, clock)
    me = await engine.authenticate(auth["Authorization"])
    assert (await claim(client, auth, second, "worker-a")).status_code == 200

    batch = await engine.claim_batch(me, "worker-b", execution_ids=[first, second])
    answers = await engine.report_outcomes(
        me, [(first, {"success": False}), (second, {"success": True})], worker_id="worker-b"
    )

    assert batch.refused == [second]
    assert isinstance(answers[0], dict)
    assert not isinstance(answers[1], dict)  # worker-a holds it: lease_lost, not counted
    samples = await scrape(client)
    assert samples("cueflow_claims_total") == 2
    assert samples("cueflow_claim_conflicts_total", mode="execution") == 1
    assert samples("cueflow_outcomes_total", transport="worker", success="false") == 1
    assert samples("cueflow_outcomes_total", transport="worker", success="true") == 0


async def test_an_expired_lease_is_counted_and_the_execution_is_queued_again(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    execution_id = await due_execution(client, auth, engine, clock)
    assert (await claim(client, auth, execution_id, "worker-a")).status_code == 200
    assert (await scrape(client))("cueflow_queue_depth", queue="pending_worker_claims") == 0

    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1

    samples = await scrape(client)
    assert samples("cueflow_lease_expiries_total", kind="claim") == 1
    assert samples("cueflow_lease_expiries_total", kind="stale") == 0
    assert samples("cueflow_queue_depth", queue="pending_worker_claims") == 1


async def test_a_silent_workers_claim_counts_as_stale(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    execution_id = await due_execution(client, auth, engine, clock)
    beat = await client.post("/v1/worker/heartbeat", json={"worker_id": "w"}, headers=auth)
    assert beat.status_code == 200, beat.text
    assert (await claim(client, auth, execution_id, "w")).status_code == 200

    clock.advance(HEARTBEAT_TIMEOUT + 1)  # the worker is silent; its claim's lease still runs
    assert await engine.sweep() == 1

    samples = await scrape(client)
    assert samples("cueflow_lease_expiries_total", kind="stale") == 1
    assert samples("cueflow_lease_expiries_total", kind="claim") == 0


async def test_a_delivery_cut_off_by_a_crash_counts_as_a_delivery_lease_expiry(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        body = {
            "name": "hook",
            "transport": "webhook",
            "callback": {"url": "http://127.0.0.1:9/hook"},
            "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
        }
        assert (await client.post("/v1/cues", json=body, headers=auth)).status_code == 201
        clock.advance(60)
        await engine.fire_due()
        # What the dispatcher does before sending; then the process dies.
        lease = clock.now() + timedelta(seconds=engine.transports["webhook"].lease_seconds)
        async with engine.store.tx() as tx:
            claimed = await tx.claim_deliveries(
                "webhook", move(Event.CLAIM), clock.now(), 10, {"lease_expires_at": lease}
            )
        assert len(claimed) == 1

    async with open_engine(database_url, clock) as engine, api(engine) as client:
        clock.advance(seconds=engine.transports["webhook"].lease_seconds)
        assert await engine.deliver_due() == 0
        samples = await scrape(client)
    assert samples("cueflow_lease_expiries_total", kind="delivery") == 1
    assert samples("cueflow_deliveries_total", transport="webhook", result="failure") == 0


async def test_webhook_deliveries_retries_and_latency_are_counted(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        receiver.reply("/hook", 500, 200)
        body = {
            "name": "hook",
            "transport": "webhook",
            "callback": {"url": receiver.url()},
            "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
            "retry": {"max_attempts": 3, "backoff_minutes": [1]},
        }
        assert (await client.post("/v1/cues", json=body, headers=auth)).status_code == 201

        assert await fire(engine, clock) == 1
        retrying = await scrape(client)
        assert retrying("cueflow_queue_depth", queue="pending_retries") == 1
        assert await fire(engine, clock) == 1

        samples = await scrape(client)
    assert len(receiver.requests) == 2
    assert samples("cueflow_fires_total", transport="webhook", status="pending") == 1
    assert samples("cueflow_deliveries_total", transport="webhook", result="failure") == 1
    assert samples("cueflow_deliveries_total", transport="webhook", result="success") == 1
    assert samples("cueflow_retries_total", transport="webhook") == 1
    assert samples("cueflow_delivery_duration_seconds_count", transport="webhook") == 2
    assert samples("cueflow_delivery_duration_seconds_sum", transport="webhook") > 0
    assert samples("cueflow_queue_depth", queue="pending_retries") == 0


async def test_the_last_failed_attempt_is_not_a_retry(database_url: str, clock: FakeClock) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        receiver.reply("/hook", 503)
        body = {
            "name": "hook",
            "transport": "webhook",
            "callback": {"url": receiver.url()},
            "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
            "retry": {"max_attempts": 1},
        }
        assert (await client.post("/v1/cues", json=body, headers=auth)).status_code == 201
        assert await fire(engine, clock) == 1
        samples = await scrape(client)
    assert samples("cueflow_deliveries_total", transport="webhook", result="failure") == 1
    assert samples("cueflow_retries_total", transport="webhook") == 0


async def test_request_latency_is_labelled_by_route_template(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for _ in range(2):
        missing = await client.get(f"/v1/executions/{uuid.uuid4()}", headers=auth)
        assert missing.status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404

    samples = await scrape(client)
    count = "cueflow_http_request_duration_seconds_count"
    assert samples(count, method="GET", route=EXECUTION_ROUTE, status="404") == 2
    assert samples(count, method="POST", route="/v1/auth/register", status="201") == 1
    assert samples(count, method="GET", route="unmatched", status="404") == 1
    routes = {labels["route"] for labels in samples.labels_of(count)}
    assert routes == {"/v1/auth/register", EXECUTION_ROUTE, "unmatched"}  # no raw paths


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    engine = Engine(make_settings(f"sqlite:///{tmp_path / 'off.db'}", metrics_enabled=False))
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
    ) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_an_unreachable_database_still_gets_an_answer() -> None:
    engine = Engine(make_settings("postgresql://postgres@127.0.0.1:1/nowhere"))
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
    ) as client:
        samples = await scrape(client)
    assert samples("cueflow_database_up") == 0


def test_each_engine_counts_on_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.claims.inc()
    assert first.registry.get_sample_value("cueflow_claims_total") == 1
    assert second.registry.get_sample_value("cueflow_claims_total") == 0


def test_every_metric_is_documented() -> None:
    documented = DOCS.read_text()
    exposed_name = {"counter": "{}_total", "info": "{}_info"}
    for family in Metrics().registry.collect():
        name = exposed_name.get(family.type, "{}").format(family.name)
        assert f"`{name}`" in documented, f"{name} is missing from docs/operations.md"
        for label in _label_names(family):
            assert f"`{label}`" in documented, f"label {label} of {name} is not documented"


def _label_names(family: Any) -> set[str]:
    return {label for sample in family.samples for label in sample.labels if label != "le"}


def test_a_real_server_serves_metrics(tmp_path: Path) -> None:
    with cueflow_server(f"sqlite:///{tmp_path / 'serve.db'}", tmp_path) as base:
        auth = httpx.post(f"{base}/v1/auth/register", json={"email": "m@example.com"})
        assert auth.status_code == 201
        response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = Samples(response.text)
    assert samples("cueflow_database_up") == 1
    count = "cueflow_http_request_duration_seconds_count"
    assert samples(count, method="POST", route="/v1/auth/register", status="201") == 1


async def test_metrics_set_before_start_record_what_the_engine_does(clock: FakeClock) -> None:
    """``engine.metrics = Metrics(registry)`` (docs/operations.md) reaches the scheduler."""
    registry = CollectorRegistry()
    engine = Engine(make_settings("sqlite://"), clock=clock)
    engine.metrics = Metrics(registry)
    due = (clock.now() + timedelta(minutes=1)).isoformat()
    async with engine:
        me = await engine.account("metrics@example.com")
        await engine.create_cue(
            me,
            {
                "name": "counted",
                "transport": "worker",
                "schedule": {"type": "once", "at": due},
                "payload": {"task": "count"},
            },
        )
        clock.advance(65)
        assert await engine.fire_due() == 1
        with pytest.raises(RuntimeError):
            engine.metrics = Metrics()  # too late: the loops hold the first one
    labels = {"transport": "worker", "status": "pending"}
    assert registry.get_sample_value("cueflow_fires_total", labels) == 1
