"""The one HTTP client and the worker core under both the ``cueflow worker`` daemon and the
agents: the wire's refusals become one error type (with ``Retry-After``), and leases are kept
at a third of a lease and given up once when lost."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cueflow.agents.client import ClientError
from cueflow.client import ApiError, AsyncClient, Retries, Unreachable
from cueflow.clock import FakeClock
from cueflow.commands import client as cli_client
from cueflow.worker_core import Leases
from tests.conftest import eventually


def _answering(response: httpx.Response) -> AsyncClient:
    transport = httpx.MockTransport(lambda request: response)
    return AsyncClient("http://cueflow.test", "k", transport=transport, retries=Retries(attempts=0))


async def test_a_refusal_is_one_api_error_with_the_envelope_and_retry_after() -> None:
    envelope = {"error": {"code": "rate_limited", "message": "slow down", "status": 429}}
    api = _answering(httpx.Response(429, json=envelope, headers={"Retry-After": "7"}))
    with pytest.raises(ApiError) as refused:
        await api.request("GET", "/v1/cues")
    error = refused.value
    assert (error.status, error.code, error.message, error.retry_after) == (
        429, "rate_limited", "slow down", 7.0,
    )  # fmt: skip
    await api.aclose()


@pytest.mark.parametrize(
    ("response", "code", "message"),
    [
        (httpx.Response(404, json={"detail": "Not Found"}), "http_error", "Not Found"),
        (httpx.Response(502, text="<html>oops</html>"), "http_error", "HTTP 502 Bad Gateway"),
    ],
)
async def test_a_refusal_without_the_envelope_is_an_api_error_too(
    response: httpx.Response, code: str, message: str
) -> None:
    api = _answering(response)
    with pytest.raises(ApiError) as refused:
        await api.request("GET", "/v1/cues")
    assert (refused.value.code, refused.value.message, refused.value.retry_after) == (
        code, message, None,
    )  # fmt: skip
    await api.aclose()


async def test_an_unreachable_server_is_the_same_error_type() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = AsyncClient("http://cueflow.test", "k", transport=httpx.MockTransport(refuse))
    with pytest.raises(Unreachable) as refused:
        await api.request("POST", "/v1/cues", body={})
    assert isinstance(refused.value, ApiError) and refused.value.status == 503
    assert str(refused.value) == "cannot reach http://cueflow.test: connection refused"
    await api.aclose()


def test_the_cli_the_daemon_and_the_agents_share_the_error_type() -> None:
    assert ClientError is ApiError
    assert cli_client.ApiError is ApiError and cli_client.Unreachable is Unreachable


class _Worker:
    """A worker API whose heartbeats answer with ``beats`` in turn (an exception is raised)."""

    def __init__(self, clock: FakeClock, *beats: Any) -> None:
        self.worker_id = "w"
        self.clock = clock
        self.beats = list(beats)
        self.beaten: list[str] = []
        self.registered = 0

    async def claim(self, execution_id: str | None = None) -> dict[str, Any]:
        return {"claimed": True, "execution_id": execution_id, "lease_seconds": 30}

    async def heartbeat(self, execution_id: str) -> dict[str, Any]:
        self.beaten.append(execution_id)
        beat = self.beats.pop(0)
        if isinstance(beat, Exception):
            raise beat
        return dict(beat)

    async def register(self, handlers: list[str]) -> dict[str, Any]:
        self.registered += 1
        return {}


async def test_leases_are_heartbeated_at_a_third_of_the_lease_and_a_lost_one_is_told_once(
    clock: FakeClock,
) -> None:
    lost = ApiError(409, "lease_lost", "the lease ran out")
    worker = _Worker(clock, {}, lost, {})
    told: list[tuple[str, str]] = []
    leases = Leases(
        worker,  # type: ignore[arg-type]
        tasks=["t"],
        register=False,
        on_lost=lambda execution_id, exc: told.append((execution_id, exc.code)),
    )
    await leases.claim({"execution_id": "e1"})

    async def beaten(times: int) -> bool:
        return len(worker.beaten) >= times

    async def was_told() -> bool:
        return bool(told)

    clock.advance(9)
    await asyncio.sleep(0.05)
    assert worker.beaten == []  # not before a third of the 30 s lease
    for times in (1, 2):
        clock.advance(10)
        await eventually(lambda times=times: beaten(times))  # type: ignore[misc]
    await eventually(was_told)
    clock.advance(60)
    await asyncio.sleep(0.05)
    assert told == [("e1", "lease_lost")] and worker.beaten == ["e1", "e1"]
    assert leases.held == {} and leases.lost == {"e1": "lease_lost"}
    await leases.stop()
