"""Time to resume after a network cut between a ``cueflow serve`` node and PostgreSQL.

    python -m benchmarks.partition                  # 15 s cut, default deadlines
    python -m benchmarks.partition --cut 30 --env CUEFLOW_DATABASE_STATEMENT_TIMEOUT_SECONDS=5

One node (default settings unless ``--env``) reaches a fresh database on the PostgreSQL server
at ``CUEFLOW_BENCH_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``) through
:class:`tests.tcp_proxy.TcpProxy`. An every-second worker cue ticks. Then the proxy cuts the
network the way a NAT or load-balancer failover does (``--cut`` seconds of silence; the
connections open at the cut never answer again, new ones work after it) while a client sends
``GET /v1/cues`` every half second. Printed as JSON: what the client got during the cut, and
how long after the network came back the API answered 2xx again, the scheduler created an
execution again and ``/health`` said ``healthy`` again (``null``: not within ``--wait``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from benchmarks.target import PG_ADMIN_URL, _pg_admin
from tests.cluster_support import Node
from tests.tcp_proxy import TcpProxy


async def _probe(client: httpx.AsyncClient, headers: dict[str, str], seen: Counter[str]) -> float:
    """One ``GET /v1/cues``; counts its status (or error) and returns its latency."""
    started = time.monotonic()
    try:
        response = await client.get("/v1/cues", headers=headers)
        seen[str(response.status_code)] += 1
    except httpx.HTTPError as exc:
        seen[type(exc).__name__] += 1
    return time.monotonic() - started


async def _first(check: Any, since: float, wait: float) -> float | None:
    """Seconds from ``since`` until ``check()`` is true (polled every 0.1 s), or ``None``."""
    while time.monotonic() - since < wait:
        if await check():
            return round(time.monotonic() - since, 2)
        await asyncio.sleep(0.1)
    return None


async def run(cut: float, wait: float, env: dict[str, str]) -> dict[str, Any]:
    """The scenario (see the module docstring); returns its figures."""
    name = f"cueflow_part_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    admin = make_url(PG_ADMIN_URL)
    direct = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    proxy = TcpProxy(admin.host or "127.0.0.1", admin.port or 5432)
    port = await proxy.start()
    proxied = make_url(direct).set(host="127.0.0.1", port=port)
    node = Node(proxied.render_as_string(hide_password=False), Path(tempfile.mkdtemp()), env)
    try:
        await node.start()
        async with httpx.AsyncClient(base_url=node.base, timeout=60) as client:
            email = f"part-{uuid.uuid4().hex[:8]}@example.com"
            key = (await client.post("/v1/auth/register", json={"email": email})).json()
            headers = {"Authorization": f"Bearer {key['api_key']}"}
            cue = {
                "name": "tick",
                "transport": "worker",
                "schedule": {"type": "interval", "interval_seconds": 1},
                "payload": {"task": "tick"},
            }
            assert (await client.post("/v1/cues", json=cue, headers=headers)).status_code == 201
            await asyncio.sleep(3)  # ticking, pool and listener in use

            proxy.cut()
            cut_at = time.monotonic()
            during: Counter[str] = Counter()
            latencies: list[float] = []
            probes: set[asyncio.Task[float]] = set()
            while time.monotonic() - cut_at < cut:
                probes.add(asyncio.ensure_future(_probe(client, headers, during)))
                await asyncio.sleep(0.5)
            proxy.heal()
            healed = time.monotonic()
            healed_at = datetime.now(UTC)

            async def api_answers() -> bool:
                try:
                    response = await client.get("/v1/cues", headers=headers, timeout=2)
                except httpx.HTTPError:
                    return False
                return response.is_success

            async def fires() -> bool:
                conn = await asyncpg.connect(direct)
                try:
                    n = await conn.fetchval(
                        "SELECT count(*) FROM executions WHERE created_at > $1", healed_at
                    )
                finally:
                    await conn.close()
                return bool(n)

            async def healthy() -> bool:
                try:
                    response = await client.get("/health", timeout=2)
                except httpx.HTTPError:
                    return False
                return bool(response.json()["status"] == "healthy")

            api_s, fire_s, health_s = await asyncio.gather(
                _first(api_answers, healed, wait),
                _first(fires, healed, wait),
                _first(healthy, healed, wait),
            )
            done, pending = await asyncio.wait(probes, timeout=max(1.0, wait - 5))
            latencies = sorted(task.result() for task in done)
            for task in pending:
                task.cancel()
                during["no answer"] += 1
            return {
                "cut_seconds": cut,
                "requests_during_cut": dict(during),
                "slowest_answer_during_cut_s": round(latencies[-1], 2) if latencies else None,
                "api_answers_after_s": api_s,
                "scheduler_fires_after_s": fire_s,
                "health_healthy_after_s": health_s,
                "settings": env,
            }
    finally:
        node.stop()
        await proxy.close()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Parse the arguments, run the scenario, print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cut", type=float, default=15.0, help="seconds the network is cut")
    parser.add_argument("--wait", type=float, default=120.0, help="longest wait after it")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the node")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    print(json.dumps(asyncio.run(run(args.cut, args.wait, env)), indent=2))


if __name__ == "__main__":
    main()
