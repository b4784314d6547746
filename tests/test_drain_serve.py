"""SIGTERM on a real ``cueflow serve``: the node answers its long-polls at once, says
``draining`` (503) on ``/status`` while ``/health`` stays 200, lets a webhook delivery or an
in-process handler in flight finish within ``--graceful-timeout``, gives back what it cannot
finish, and exits in bounded time with nothing left ``delivering`` (on SQLite and PostgreSQL).

Each test prints the measured drain time (``pytest -s`` shows it)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow.push_attempts import RELEASED_ON_STOP
from tests.cluster_database import stored_executions
from tests.drain_support import HANDLER_NODE, fire, register, served, slow_receiver, wait_until

POLLS = 3


def _execution_row(database_url: str, execution_id: str) -> dict[str, Any]:
    [row] = [
        row for row in asyncio.run(stored_executions(database_url)) if row["id"] == execution_id
    ]
    return row


def _execution(database_url: str, execution_id: str) -> dict[str, Any]:
    """The execution's row, once no execution is left ``delivering`` (nothing held)."""
    rows = asyncio.run(stored_executions(database_url))
    assert not [row["id"] for row in rows if row["status"] == "delivering"]
    [row] = [row for row in rows if row["id"] == execution_id]
    return row


def _long_polls(base: str, auth: dict[str, str]) -> tuple[list[threading.Thread], list[Any]]:
    """Open :data:`POLLS` ``claimable?wait=60`` requests, each in a thread."""
    answers: list[Any] = []

    def poll() -> None:
        answer = httpx.get(
            f"{base}/v1/executions/claimable", params={"wait": 60}, headers=auth, timeout=90
        )
        answers.append((answer.status_code, answer.json()))

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(POLLS)]
    for thread in threads:
        thread.start()
    return threads, answers


def test_sigterm_with_long_polls_open_and_a_stuck_delivery_exits_within_the_grace(
    database_url: str, tmp_path: Path
) -> None:
    grace = 2.0
    with (
        slow_receiver() as receiver,
        served(database_url, tmp_path, "--graceful-timeout", str(grace)) as node,
    ):
        auth = register(node.base)
        threads, answers = _long_polls(node.base, auth)
        execution_id = fire(node.base, auth, {"callback": {"url": receiver.url}})
        assert receiver.arrived.wait(30)  # the delivery is in flight (its receiver holds it)
        sent = node.terminate()
        took = node.wait_exit(sent)
        for thread in threads:
            thread.join(10)
    print(f"\nexit after SIGTERM with {POLLS} long-polls open, a delivery stuck: {took:.2f} s")
    assert took < grace + 8  # not the 60 s of the long-polls' wait
    assert answers == [(200, {"executions": []})] * POLLS
    row = _execution(database_url, execution_id)
    assert row["status"] == "pending"  # back in the queue for the next node, at once
    assert row["attempts"] == 0
    assert row["lease_expires_at"] is None
    assert row["error_message"] == RELEASED_ON_STOP


def test_a_webhook_in_flight_is_delivered_during_the_drain(
    database_url: str, tmp_path: Path
) -> None:
    with slow_receiver() as receiver, served(database_url, tmp_path) as node:
        auth = register(node.base)
        execution_id = fire(node.base, auth, {"callback": {"url": receiver.url}})
        assert receiver.arrived.wait(30)
        node.terminate()

        def draining() -> bool:
            status = httpx.get(f"{node.base}/status", timeout=5)
            return status.status_code == 503 and status.json()["status"] == "draining"

        wait_until(draining, 10)  # a balancer stops routing here
        assert httpx.get(f"{node.base}/health", timeout=5).status_code == 200  # still alive
        released = time.monotonic()
        receiver.release.set()  # the receiver answers: the attempt is recorded
        took = node.wait_exit(released)
    print(f"\nexit after the in-flight webhook was answered: {took:.2f} s")
    assert took < 10
    assert len(receiver.requests) == 1
    row = _execution(database_url, execution_id)
    assert row["status"] == "success"
    assert row["attempts"] == 1
    assert row["http_status"] == 200


def test_an_inprocess_handler_in_flight_finishes_within_the_grace(
    database_url: str, tmp_path: Path
) -> None:
    env = {"CUEFLOW_GRACEFUL_TIMEOUT_SECONDS": "15"}
    with served(database_url, tmp_path, program=HANDLER_NODE, **env) as node:
        auth = register(node.base)
        cue = {"transport": "inprocess", "payload": {"task": "steady", "seconds": 2}}
        execution_id = fire(node.base, auth, cue)

        def running() -> bool:
            answer = httpx.get(f"{node.base}/v1/executions/{execution_id}", headers=auth)
            return bool(answer.json()["status"] == "delivering")

        wait_until(running, 30)
        sent = node.terminate()
        took = node.wait_exit(sent)
    print(f"\nexit after SIGTERM with a 2 s handler in flight: {took:.2f} s")
    assert took < 15
    row = _execution(database_url, execution_id)
    assert row["status"] == "success"
    assert row["outcome_result"] == "finished"


def test_a_second_ctrl_c_stops_without_waiting_for_the_grace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    with slow_receiver() as receiver, served(url, tmp_path, "--graceful-timeout", "60") as node:
        auth = register(node.base)
        execution_id = fire(node.base, auth, {"callback": {"url": receiver.url}})
        assert receiver.arrived.wait(30)
        node.process.send_signal(signal.SIGINT)
        wait_until(lambda: httpx.get(f"{node.base}/status", timeout=5).status_code == 503, 10)
        sent = time.monotonic()
        node.process.send_signal(signal.SIGINT)  # impatient: stop now
        code = node.process.wait(timeout=30)
        took = time.monotonic() - sent
    print(f"\nexit after a second Ctrl-C: {took:.2f} s")
    assert code in (0, 130, -signal.SIGINT)  # 130: the KeyboardInterrupt uvicorn re-raises
    assert took < 10
    row = _execution_row(url, execution_id)
    assert row["status"] == "delivering"  # as after a crash: retried when its lease ends


@pytest.mark.parametrize(
    ("proxies", "codes"), [("127.0.0.1", [201] * 5), ("192.0.2.1", [201] * 3 + [429] * 2)]
)
def test_forwarded_for_counts_for_rate_limits_only_from_the_proxies_of_the_flag(
    tmp_path: Path, proxies: str, codes: list[int]
) -> None:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    env = {"CUEFLOW_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "3"}
    with served(url, tmp_path, "--forwarded-allow-ips", proxies, **env) as node:
        got = [
            httpx.post(
                f"{node.base}/v1/auth/register",
                json={"email": f"client{n}@example.com"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(5)
        ]
    # believed from 127.0.0.1 (the test's address): each client has its own budget;
    # from another peer the header is ignored and all five share 127.0.0.1's
    assert got == codes


def test_the_node_keeps_accepting_connections_for_the_drain_accept_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    # 5 s, so that a loaded machine's slow first answer (the wait below) cannot use it all up
    # before the check, which comes 1.2 s after SIGTERM at the earliest
    env = {"CUEFLOW_DRAIN_ACCEPT_SECONDS": "5"}
    with served(url, tmp_path, **env) as node:
        sent = node.terminate()
        wait_until(lambda: httpx.get(f"{node.base}/status", timeout=5).status_code == 503, 10)
        time.sleep(max(0.0, sent + 1.2 - time.monotonic()))
        # nothing was in flight: without the setting the node would be gone by now
        with httpx.Client() as fresh:  # a new connection, as a balancer opens
            assert fresh.get(f"{node.base}/status").json()["status"] == "draining"
            assert fresh.get(f"{node.base}/health").status_code == 200
        took = node.wait_exit(sent)
    print(f"\nexit {took:.2f} s after SIGTERM with CUEFLOW_DRAIN_ACCEPT_SECONDS=5")
    assert 5 <= took < 15
