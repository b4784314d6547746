"""Webhook latency of a local ``cueflow serve``: from ``scheduled_for`` to receipt.

Starts a server (SQLite by default, or ``--database-url postgresql://...``) with private
webhooks allowed, a receiver on 127.0.0.1, creates M one-time webhook cues due over a few
seconds, and reports the lag from each execution's ``scheduled_for`` to its arrival
(p50/p95/max), writing the figures as JSON.

    python benchmarks/webhook_latency.py --cues 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.server import cueflow_server

ARRIVALS: dict[str, tuple[float, str]] = {}


class Receiver(BaseHTTPRequestHandler):
    """Records when each execution arrives."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        document = json.loads(body)
        ARRIVALS.setdefault(document["execution_id"], (time.time(), document["scheduled_for"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def run(database_url: str, cues: int, spread: float) -> dict:
    """One run; returns its figures."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    env = {"CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "true"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        cueflow_server(database_url, Path(tmp), **env) as api,
    ):
        email = f"bench-{time.time_ns()}@example.com"
        key = requests.post(f"{api}/v1/auth/register", json={"email": email}).json()["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        start = datetime.now(UTC) + timedelta(seconds=3 + cues / 15)
        with requests.Session() as session:
            for n in range(cues):
                at = start + timedelta(seconds=spread * n / cues)
                body = {
                    "name": f"hook-{n}",
                    "schedule": {"type": "once", "at": at.isoformat()},
                    "callback": {"url": hook},
                }
                response = session.post(f"{api}/v1/cues", headers=headers, json=body)
                assert response.status_code == 201, response.text
        deadline = time.time() + 60 + spread + (start - datetime.now(UTC)).total_seconds()
        while len(ARRIVALS) < cues and time.time() < deadline:
            time.sleep(0.05)
        retried = []
        for offset in range(0, cues, 100):
            page = requests.get(
                f"{api}/v1/executions", headers=headers, params={"limit": 100, "offset": offset}
            ).json()
            retried += [e["error_message"] for e in page["executions"] if e["attempts"] > 1]
    receiver.shutdown()
    lags = sorted(
        arrived - datetime.fromisoformat(scheduled).timestamp()
        for arrived, scheduled in ARRIVALS.values()
    )
    return {
        "database": database_url.split("://")[0],
        "cues": cues,
        "received": len(lags),
        "retried": len(retried),
        "retry_reasons": sorted(set(filter(None, retried))),
        "lag_p50_ms": round(statistics.median(lags) * 1000, 1),
        "lag_p95_ms": round(lags[int(len(lags) * 0.95) - 1] * 1000, 1),
        "lag_max_ms": round(lags[-1] * 1000, 1),
    }


def main() -> None:
    """Parse arguments, run, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--cues", type=int, default=200)
    parser.add_argument("--spread", type=float, default=3.0, help="seconds the fires span")
    parser.add_argument("--out", default="benchmarks/results/webhook_latency.json")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    figures = run(url, args.cues, args.spread)
    print(json.dumps(figures, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
