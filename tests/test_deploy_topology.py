"""The production topology of ``docs/deploy.md`` without containers: three real ``cueflow
serve`` processes on one PostgreSQL database behind a real HAProxy running the repository's
``deploy/haproxy.cfg`` (readiness check on ``/status``). CueAPI's official SDK, the official
``cueapi-worker`` daemon and a fleet of worker loops with a scoped worker key go through the
balancer while one node is stopped with SIGTERM; no client sees an error (no 5xx, no connection
error: HAProxy's own log is read too) and every execution ends exactly once.

Needs ``haproxy`` (skipped without it unless ``CUEFLOW_REQUIRE_HAPROXY=1``) and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster_clients import Ledger, Worker, wait_until
from tests.cluster_database import stored_executions
from tests.cluster_support import cluster, node_env
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.haproxy_support import haproxy, haproxy_binary
from tests.official_clients import clients_bin, sdk

CUES = 150
"""Worker executions of the load (one per ``once`` cue)."""
GRACE = 5
"""The stopped node's ``CUEFLOW_GRACEFUL_TIMEOUT_SECONDS``."""
DAEMON = "official-daemon"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


class SdkClient:
    """CueAPI's official SDK creating cues (and listing them) through the balancer in a
    thread, keeping every exception it raised."""

    def __init__(self, base: str, key: str) -> None:
        self.client = sdk().CueAPI(key, base_url=base)
        self.errors: list[str] = []
        self.created: list[str] = []

    def create(self, count: int, pause: float = 0.0) -> None:
        """Create ``count`` worker ``once`` cues, each due 3 s after it is asked for (time enough
        for the request on a loaded machine: a time in the past is refused)."""
        for n in range(count):
            try:
                cue = self.client.cues.create(
                    f"load-{len(self.created)}-{n}",
                    at=datetime.now(UTC) + timedelta(seconds=3),
                    transport="worker",
                    payload={"task": "load"},
                )
                self.created.append(cue.id)
                if n % 10 == 0:
                    self.client.cues.list(limit=5)
            except Exception as error:  # any failure is what the test looks for
                self.errors.append(repr(error))
            time.sleep(pause)


class RecordingWorker(Worker):
    """A worker loop that also keeps what each connection error was."""

    transport_errors: list[str]

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await client.request(method, f"{self.base}{path}", **kwargs)
        except httpx.TransportError as error:
            self.ledger.connection_errors += 1
            ERRORS.append(f"{method} {path}: {error!r}")
            await asyncio.sleep(self.retry_pause)
            return None
        self.ledger.count(response)
        return response


ERRORS: list[str] = []


def _daemon(base: str, key: str, workdir: Path) -> subprocess.Popen[str]:
    """The official worker daemon, polling through the balancer."""
    config = {
        "api_key": key,
        "api_base": base,
        "worker_id": DAEMON,
        "poll_interval": 1,
        "heartbeat_interval": 2,
        "handlers": {"load": "true"},
    }
    path = workdir / "worker.yaml"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [str(clients_bin() / "cueapi-worker"), "start", "-c", str(path)],
        env={**os.environ, "HOME": str(workdir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "accept",
    [
        # compose.yaml's CUEFLOW_DRAIN_ACCEPT_SECONDS: HAProxy's check sees the drain and stops
        # routing to the node before it closes its port, so no request needs a retry
        "3",
        # the default: the node closes its port a fraction of a second after SIGTERM, before
        # the check sees it; HAProxy's retries on another node (deploy/haproxy.cfg) hide that
        "0",
    ],
)
async def test_a_node_stopped_under_load_behind_haproxy_costs_no_client_an_error(
    pg_url: str, tmp_path: Path, accept: str
) -> None:
    haproxy_binary()
    sdk(), clients_bin()  # installed before the clock starts
    env = node_env(
        lease_seconds=10,
        CUEFLOW_GRACEFUL_TIMEOUT_SECONDS=str(GRACE),
        CUEFLOW_DRAIN_ACCEPT_SECONDS=accept,
        CUEFLOW_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    async with cluster(pg_url, tmp_path, nodes=3, **env) as nodes:
        with haproxy([node.port for node in nodes], tmp_path) as balancer:
            base = balancer.base
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                registered = await http.post(
                    "/v1/auth/register", json={"email": "deploy@example.com"}
                )
                assert registered.status_code == 201, registered.text
                full_key = registered.json()["api_key"]
                scoped = await http.post(
                    "/v1/auth/keys",
                    json={"scope": "worker", "name": "fleet"},
                    headers={"Authorization": f"Bearer {full_key}"},
                )
                assert scoped.status_code == 201, scoped.text
                worker_key = scoped.json()["api_key"]

            client = SdkClient(base, full_key)
            first = CUES // 3
            await asyncio.to_thread(client.create, first)
            creating = threading.Thread(
                target=client.create, args=(CUES - first, 0.03), daemon=True
            )
            creating.start()

            ledger = Ledger()
            stop = asyncio.Event()
            workers = [RecordingWorker(f"loop-{k}", [base], worker_key, ledger) for k in range(4)]
            running = [asyncio.create_task(w.run(stop)) for w in workers]
            daemon = _daemon(base, worker_key, tmp_path)
            try:
                await asyncio.sleep(4)  # claims and outcomes flowing on every node
                stopped = nodes[1]
                assert stopped.process is not None
                stopped.process.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                code = await asyncio.to_thread(stopped.process.wait, GRACE + 15)
                took = time.monotonic() - sent
                stopped.process = None
                assert code in (0, -signal.SIGTERM), f"exited with {code}"
                await asyncio.to_thread(creating.join, 30)
                assert not creating.is_alive()

                async def all_ended() -> bool:
                    rows = await stored_executions(pg_url)
                    return len(rows) == len(client.created) and all(
                        r["status"] == "success" for r in rows
                    )

                try:
                    await wait_until(all_ended, 30, "every execution ended")
                except AssertionError:
                    rows = await stored_executions(pg_url)
                    left = Counter((r["status"], r["claimed_by_worker"]) for r in rows)
                    raise AssertionError(
                        f"{len(rows)} executions of {len(client.created)} cues: {left}; "
                        f"SDK errors {client.errors[:3]}; {ledger.statuses} {ledger.refused}"
                    ) from None
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*running), 30)
                daemon.send_signal(signal.SIGTERM)
                _, daemon_err = await asyncio.to_thread(daemon.communicate, None, 30)
                client.client.close()
            states = balancer.servers_up()
            logged = balancer.requests()

    rows = await stored_executions(pg_url)
    retried = sum(1 for r in logged if r.retries.lstrip("+") != "0")
    print(
        f"\n{len(logged)} requests through HAProxy, {retried} retried on another node; node "
        f"exit {took:.2f} s after SIGTERM; {Counter(r['claimed_by_worker'] for r in rows)}"
    )
    # no client saw an error
    assert client.errors == []
    assert [r for r in logged if r.failed] == []
    assert ERRORS == []
    assert ledger.connection_errors == 0
    assert ledger.server_errors == 0, ledger.statuses
    assert [r for r in logged if r.failed] == []
    assert "Traceback" not in daemon_err, daemon_err[-2000:]
    assert states["node1"] != "UP"  # the stopped node left the rotation
    # nothing lost, nothing twice: one execution per cue, each ended once, by one worker
    assert len(client.created) == CUES
    assert sorted(r["cue_id"] for r in rows) == sorted(client.created)
    assert all(r["status"] == "success" and r["outcome_success"] for r in rows)
    assert all(len(acks) == 1 for acks in ledger.outcomes.values())
    by_loops = {r["id"] for r in rows if r["claimed_by_worker"] != DAEMON}
    assert by_loops == set(ledger.outcomes)
    assert len(logged) > CUES * 3  # the load did go through the balancer
    assert took < GRACE + float(accept) + 10
    if accept != "0":
        assert retried == 0  # the node left the rotation before it stopped listening
