"""Clients of the reliability nodes over HTTP: a :class:`Ledger` of every answer they got,
account registration, cue creation and pausing, and :class:`Worker`, CueAPI's worker loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


@dataclass
class Ledger:
    """What the clients were told: every claim granted, every outcome acknowledged, every
    status code, every connection error."""

    claims: list[tuple[str, str, float]] = field(default_factory=list)
    """(worker, execution id, monotonic time) of each claim answered 200."""
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    """Execution id → workers whose outcome report was answered 2xx."""
    refused: Counter[str] = field(default_factory=Counter)
    """Error codes of 4xx answers."""
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    created: list[str] = field(default_factory=list)
    """Ids of cues whose creation was answered 201."""

    def count(self, response: httpx.Response) -> None:
        """Record a response's status (and error code when it is a 4xx)."""
        self.statuses[response.status_code] += 1
        if 400 <= response.status_code < 500:
            try:
                self.refused[response.json()["error"]["code"]] += 1
            except (ValueError, KeyError, TypeError):
                self.refused[f"http_{response.status_code}"] += 1

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def claims_of(self, execution_id: str) -> list[tuple[str, float]]:
        """(worker, time) of each claim of one execution, in order."""
        return [(w, t) for w, e, t in self.claims if e == execution_id]


async def register(base: str) -> str:
    """A new account's API key."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"rel-{random.getrandbits(48):x}@example.com"
        response = await client.post("/v1/auth/register", json={"email": email})
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])


def at(seconds_from_now: float) -> str:
    """An ISO timestamp ``seconds_from_now`` in the future."""
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat()


async def create_cues(
    bases: Sequence[str], key: str, bodies: Sequence[dict[str, Any]], ledger: Ledger
) -> list[dict[str, Any]]:
    """Create cues (spread over ``bases``, 8 at a time); returns the created cues."""
    created: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    queue = list(enumerate(bodies))

    async def creator(client: httpx.AsyncClient) -> None:
        while queue:
            n, body = queue.pop()
            response = await client.post(
                f"{bases[n % len(bases)]}/v1/cues", json=body, headers=headers
            )
            ledger.count(response)
            assert response.status_code == 201, response.text
            created.append(response.json())
            ledger.created.append(response.json()["id"])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(creator(client) for _ in range(8)))
    return created


@dataclass
class Worker:
    """CueAPI's worker loop over HTTP (poll claimable, claim one by id, work, report), keeping
    a ledger. On a connection error it retries (after ``retry_pause``) on the next of its
    ``bases``; an outcome is re-sent until the server answers."""

    name: str
    bases: list[str]
    key: str
    ledger: Ledger
    work_seconds: float = 0.02
    retry_pause: float = 0.2
    holding: set[str] = field(default_factory=set)
    """Claims granted and not yet reported."""
    reporting: set[str] = field(default_factory=set)
    """Claims whose outcome report has been sent and not yet answered."""
    _turn: int = 0

    @property
    def base(self) -> str:
        return self.bases[self._turn % len(self.bases)]

    @property
    def working(self) -> set[str]:
        """Claims granted whose outcome has not been sent yet."""
        return self.holding - self.reporting

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await client.request(method, f"{self.base}{path}", **kwargs)
        except httpx.TransportError:
            self.ledger.connection_errors += 1
            self._turn += 1
            await asyncio.sleep(self.retry_pause)
            return None
        self.ledger.count(response)
        return response

    async def run(self, stop: asyncio.Event, rng: random.Random | None = None) -> None:
        """Work until ``stop`` is set and nothing is claimable."""
        rng = rng or random.Random(self.name)
        headers = {"Authorization": f"Bearer {self.key}", "X-Worker-Id": self.name}
        async with httpx.AsyncClient(headers=headers, timeout=15) as client:
            while True:
                listed = await self._send(client, "GET", "/v1/executions/claimable")
                if listed is None:
                    continue
                items = listed.json().get("executions", []) if listed.status_code == 200 else []
                if not items:
                    if stop.is_set():
                        return
                    await asyncio.sleep(0.05)
                    continue
                target = rng.choice(items)["execution_id"]
                await self.claim_and_work(client, target)

    async def claim_and_work(self, client: httpx.AsyncClient, execution_id: str) -> None:
        """Claim ``execution_id``; if granted, work and report success."""
        claim = await self._send(
            client,
            "POST",
            f"/v1/executions/{execution_id}/claim",
            json={"worker_id": self.name},
        )
        if claim is None or claim.status_code != 200:
            return
        self.ledger.claims.append((self.name, execution_id, time.monotonic()))
        self.holding.add(execution_id)
        await asyncio.sleep(self.work_seconds)
        body = {"success": True, "result": self.name, "worker_id": self.name}
        self.reporting.add(execution_id)
        while True:
            report = await self._send(
                client, "POST", f"/v1/executions/{execution_id}/outcome", json=body
            )
            if report is not None:
                break
        self.holding.discard(execution_id)
        self.reporting.discard(execution_id)
        if report.status_code < 300:
            self.ledger.outcomes.setdefault(execution_id, []).append(self.name)


async def wait_until(check: Any, timeout: float, what: str, pause: float = 0.25) -> Any:
    """Await ``check()`` until truthy; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(pause)


async def pause_cues(base: str, key: str, cue_ids: Sequence[str]) -> None:
    """Pause cues (``PATCH {"status": "paused"}``)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for cue_id in cue_ids:
            response = await client.patch(f"/v1/cues/{cue_id}", json={"status": "paused"})
            assert response.status_code == 200, response.text
