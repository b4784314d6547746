"""Throughput of CueAPI's minimal worker loop against a local ``cueflow serve``.

Starts a server (SQLite by default, or ``--database-url postgresql://...``), creates N one-time
worker cues due at the same moment, then runs K worker processes, each doing the loop of
``examples/minimal_worker.py`` (poll claimable → claim each → report outcome; the loop's
``time.sleep`` is ``--poll-sleep``). Prints executions/s from the scheduled time to the last
outcome, the lag from ``scheduled_for`` to first-seen-claimable, 409s, duplicates, and client
CPU, and writes the figures as JSON.

    python benchmarks/worker_loop.py --executions 1000 --workers 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.server import cueflow_server


def worker(api: str, token: str, worker_id: str, due: float, poll_sleep: float, out: mp.Queue):
    """The minimal worker loop, instrumented; stops when every execution is done."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    claimed, conflicts, first_seen = [], 0, {}
    idle_since = None
    while True:
        resp = session.get(f"{api}/v1/executions/claimable", headers=headers)
        executions = resp.json().get("executions", [])
        now = time.time()
        for execution in executions:
            first_seen.setdefault(execution["execution_id"], (now, execution["scheduled_for"]))
        for execution in executions:
            exec_id = execution["execution_id"]
            claim = session.post(
                f"{api}/v1/executions/{exec_id}/claim",
                headers=headers,
                json={"worker_id": worker_id},
            )
            if claim.status_code != 200:
                conflicts += 1
                continue
            claimed.append(exec_id)
            session.post(
                f"{api}/v1/executions/{exec_id}/outcome",
                headers=headers,
                json={"success": True, "result": "ok"},
            )
        if not executions and time.time() > due:
            idle_since = idle_since or time.time()
            if time.time() - idle_since > 2.0:
                break
        else:
            idle_since = None
        time.sleep(poll_sleep)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "claimed": claimed,
            "conflicts": conflicts,
            "first_seen": first_seen,
            "cpu": usage.ru_utime + usage.ru_stime,
        }
    )


def run(database_url: str, executions: int, workers: int, poll_sleep: float) -> dict:
    """One benchmark run; returns its figures."""
    with tempfile.TemporaryDirectory() as tmp, cueflow_server(database_url, Path(tmp)) as api:
        token = requests.post(
            f"{api}/v1/auth/register", json={"email": f"bench-{time.time_ns()}@example.com"}
        ).json()["api_key"]
        headers = {"Authorization": f"Bearer {token}"}
        due = datetime.now(UTC) + timedelta(seconds=3 + executions / 50)
        with requests.Session() as session:
            for n in range(executions):
                r = session.post(
                    f"{api}/v1/cues",
                    headers=headers,
                    json={
                        "name": f"job-{n}",
                        "schedule": {"type": "once", "at": due.isoformat()},
                        "transport": "worker",
                        "payload": {"task": "bench"},
                    },
                )
                assert r.status_code == 201, r.text
        out: mp.Queue = mp.Queue()
        procs = [
            mp.Process(target=worker, args=(api, token, f"w{k}", due.timestamp(), poll_sleep, out))
            for k in range(workers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        finished = time.time()
    claimed = [e for r in results for e in r["claimed"]]
    lags = []
    seen: dict[str, float] = {}
    for r in results:
        for eid, (t, scheduled) in r["first_seen"].items():
            seen[eid] = min(seen.get(eid, t), t)
            lags.append(t - datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp())
    elapsed = finished - 2.0 - due.timestamp()
    lags.sort()
    return {
        "database": database_url.split("://")[0],
        "executions": executions,
        "workers": workers,
        "poll_sleep": poll_sleep,
        "completed": len(set(claimed)),
        "duplicates": len(claimed) - len(set(claimed)),
        "conflicts_409": sum(r["conflicts"] for r in results),
        "seconds": round(elapsed, 2),
        "exec_per_s": round(len(set(claimed)) / elapsed, 1),
        "lag_first_claimable_min_ms": round(min(lags) * 1000),
        "lag_first_claimable_p50_ms": round(statistics.median(lags) * 1000),
        "lag_first_claimable_max_ms": round(max(lags) * 1000),
        "client_cpu_s": round(sum(r["cpu"] for r in results), 2),
    }


def main() -> None:
    """Parse arguments, run, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--poll-sleep", type=float, default=0.0, help="the example sleeps 2 s")
    parser.add_argument("--out", default="benchmarks/results/worker_loop.json")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    figures = run(url, args.executions, args.workers, args.poll_sleep)
    print(json.dumps(figures, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
