"""cueflow's benchmark suite.

    python -m benchmarks                          # everything, SQLite and PostgreSQL, 3 runs
    python -m benchmarks --store sqlite --scenarios worker --protocols batch --repeat 1
    python -m benchmarks --url http://host:8000 --api-key cue_sk_... --scenarios worker,api
    python -m benchmarks --store sqlite --scenarios flood,longpoll --repeat 1   # robustness
    python -m benchmarks --scenarios flows --items 100 --repeat 1               # flows
    python -m benchmarks --scenarios worker --protocols next,batch --clients lite \
        --controls none,priority+concurrency                                     # run controls
    python -m benchmarks --scenarios retention --seeded 100000 --repeat 1        # retention

Each run of a scenario gets a fresh ``cueflow serve`` on a fresh database (or uses the server
at ``--url``). Figures are printed as a table (median and range over ``--repeat`` runs) and
written as JSON to ``--out``. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    api_latency,
    claimable_latency,
    embedded,
    flood,
    flows,
    hostile_tenant,
    longpoll,
    retention,
    scale,
    webhook_latency,
    worker_throughput,
)
from benchmarks.stats import summarize
from benchmarks.target import ServerTarget, Target

SCENARIOS = (
    "worker",
    "claimable",
    "webhook",
    "hostile",
    "api",
    "scale",
    "embedded",
    "flood",
    "longpoll",
    "flows",
    "retention",
)

ROBUSTNESS_ENV = {
    "flood": {"CUEFLOW_RATE_LIMIT_PER_MINUTE": "60000"},
    # the waits must reach the long-poll code, not stop at the connection cap (1000)
    "longpoll": {"CUEFLOW_RATE_LIMIT_PER_MINUTE": "60000", "CUEFLOW_MAX_CONNECTIONS": "4000"},
}
"""The flood and long-poll scenarios measure the server as shipped: rate limits on."""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        pg = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql_client": pg,
        "load_average_at_start": os.getloadavg(),
    }


def _configs(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, scenario, parameters) of every configuration to run."""
    configs: list[tuple[str, str, dict[str, Any]]] = []
    stores = ["remote"] if args.url else args.store.split(",")
    for scenario in args.scenarios.split(","):
        if scenario not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        for store in stores:
            if scenario == "worker":
                for client in args.clients.split(","):
                    for protocol in args.protocols.split(","):
                        for controls in worker_throughput.parse_controls(args.controls):
                            params = {
                                "store": store,
                                "protocol": protocol,
                                "client": client,
                                "executions": args.executions,
                                "workers": args.workers,
                                "batch": args.batch,
                                "controls": controls,
                            }
                            label = f"worker {protocol} {client} {store}"
                            if controls:
                                label += " +" + "+".join(controls)
                            configs.append((label, scenario, params))
            elif scenario == "embedded" and store != "remote":
                for protocol in ("next", "batch"):
                    params = {
                        "store": store,
                        "protocol": protocol,
                        "executions": args.executions,
                        "workers": args.workers,
                        "batch": args.batch,
                    }
                    configs.append((f"embedded {protocol} {store}", scenario, params))
            elif scenario == "webhook":
                params = {"store": store, "cues": args.webhooks, "spread": args.spread}
                configs.append((f"webhook {store}", scenario, params))
            elif scenario == "hostile":
                params = {"store": store, "hostile_cues": args.hostile_cues}
                configs.append((f"hostile {store}", scenario, params))
            elif scenario == "claimable":
                params = {
                    "store": store,
                    "cues": args.webhooks,
                    "spread": args.spread,
                    "long_poll": not args.tight_poll,
                }
                configs.append((f"claimable {store}", scenario, params))
            elif scenario == "api":
                params = {"store": store, "requests": args.requests, "concurrency": 8}
                configs.append((f"api {store}", scenario, params))
            elif scenario == "flood":
                params = {"store": store, "connections": args.flood, "bodies": args.bodies}
                configs.append((f"flood {store}", scenario, params))
            elif scenario == "longpoll":
                params = {"store": store, "waits": args.waits}
                configs.append((f"longpoll {store}", scenario, params))
            elif scenario == "flows":
                for part in args.flows.split(","):
                    if part not in flows.PARTS:
                        raise SystemExit(f"unknown flows part {part!r}; one of {flows.PARTS}")
                    if part == "cluster" and store != "postgresql":
                        continue  # several nodes share one database: PostgreSQL's
                    params = {
                        "store": store,
                        "part": part,
                        "handoffs": args.handoffs,
                        "runs": args.runs,
                        "items": args.items,
                        "workers": args.workers,
                        "batch": args.batch,
                        "protocol": args.flow_protocol,
                    }
                    configs.append((f"flows {part} {store}", scenario, params))
            elif scenario == "retention" and store != "remote":
                params = {
                    "store": store,
                    "seeded": args.seeded,
                    "executions": args.executions,
                    "workers": args.workers,
                    "batch": args.batch,
                    "protocol": args.retention_protocol,
                    "prune_batch": args.prune_batch,
                }
                configs.append((f"retention {store}", scenario, params))
            elif scenario == "scale" and store != "remote":
                params = {"store": store, "idle": args.idle_cues, "burst": args.burst}
                configs.append((f"scale {store}", scenario, params))
    return configs


def _target(args: argparse.Namespace, store: str, scenario: str) -> Target:
    if args.url:
        return Target(args.url, args.api_key)
    env = ROBUSTNESS_ENV.get(scenario)
    log = Path(args.server_log) if args.server_log else None
    return ServerTarget(store, env=env, log=log, workers=args.server_workers)


async def _run_one(args: argparse.Namespace, scenario: str, params: dict[str, Any]) -> dict:
    store = params["store"]
    if scenario == "embedded":
        return await embedded.run(
            store, params["executions"], params["workers"], params["protocol"], params["batch"]
        )
    if scenario == "flows" and params["part"] == "cluster":
        return await flows.cluster()  # 40 runs of 10 items: bounded, it kills a node
    target = await asyncio.to_thread(_target, args, store, scenario)
    try:
        if scenario == "worker":
            return await worker_throughput.run(
                target,
                executions=params["executions"],
                workers=params["workers"],
                protocol=params["protocol"],
                client=params["client"],
                batch=params["batch"],
                controls=params["controls"],
            )
        if scenario == "webhook":
            return await webhook_latency.run(
                target, params["cues"], params["spread"], args.receiver_host
            )
        if scenario == "hostile":
            return await hostile_tenant.run(target, params["hostile_cues"], args.receiver_host)
        if scenario == "claimable":
            return await claimable_latency.run(
                target, params["cues"], params["spread"], params["long_poll"]
            )
        if scenario == "api":
            return await api_latency.run(target, params["requests"], params["concurrency"])
        if scenario == "flood":
            return await flood.run(target, params["connections"], bodies=params["bodies"])
        if scenario == "longpoll":
            return await longpoll.run(target, params["waits"])
        if scenario == "flows":
            return await _run_flows(target, params)
        assert isinstance(target, ServerTarget)
        if scenario == "retention":
            return await retention.run(
                target,
                seeded=params["seeded"],
                executions=params["executions"],
                workers=params["workers"],
                protocol=params["protocol"],
                batch=params["batch"],
                prune_batch=params["prune_batch"],
            )
        counts = tuple(int(c) for c in params["idle"].split(","))
        return await scale.run(target, counts, params["burst"])
    finally:
        await asyncio.to_thread(target.close)


async def _run_flows(target: Target, params: dict[str, Any]) -> dict[str, Any]:
    part = params["part"]
    if part == "handoff":
        return await flows.handoff(target, params["handoffs"])
    if part == "chain":
        return await flows.chain(
            target, params["runs"], params["workers"], params["protocol"], params["batch"]
        )
    return await flows.fanout(target, params["items"], params["workers"])


def _flows_headline(r: dict[str, Any]) -> dict[str, float | None]:
    part = r["part"]
    if part == "handoff":
        return {
            "handoff p50 ms": r["handoff_ms"]["p50"],
            "handoff p95 ms": r["handoff_ms"]["p95"],
            "handoff max ms": r["handoff_ms"]["max"],
            "not seen in wait": r["not_seen_within_wait"],
            "runs succeeded": r["succeeded"],
        }
    if part == "chain":
        return {
            "runs/s": r["runs_per_s"],
            "steps/s": r["steps_per_s"],
            "runs succeeded": r["succeeded"],
            "dups": r["duplicate_claims"],
            "server cpu s": r.get("server_cpu_seconds"),
            "db cpu s": r.get("database_cpu_seconds"),
        }
    if part == "fanout":
        return {
            "seconds": r["seconds"],
            "items/s": r["items_per_s"],
            "items succeeded": r["items_succeeded"],
            "handed twice": r["handed_twice"],
            "problems": len(r["problems"]),
        }
    return {
        "runs": r["runs"],
        "runs succeeded": r["succeeded"],
        "drained s after kill": r["drained_after_kill_seconds"],
        "duplicate step executions": r["duplicate_step_executions"],
        "acknowledged outputs lost": r["acknowledged_outputs_lost"],
        "problems": len(r["problems"]),
        "seconds": r["seconds"],
    }


Headline = Callable[[dict[str, Any]], dict[str, float | None]]

HEADLINES: dict[str, Headline] = {
    "worker": lambda r: {
        "exec/s": r["exec_per_s"],
        "lag p95 ms": r["lag_ms"]["p95"],
        "dups": r["duplicate_claims"],
        "409s": r["conflicts_409"],
        "client cpu s": r["client_cpu_seconds"],
        "server cpu s": r.get("server_cpu_seconds"),
        "db cpu s": r.get("database_cpu_seconds"),
        "peak rss MB": r.get("server_peak_rss_mb"),
    },
    "embedded": lambda r: {
        "exec/s": r["exec_per_s"],
        "lag p95 ms": r["lag_ms"]["p95"],
        "dups": r["duplicate_claims"],
        "cpu s": r["process_cpu_seconds"],
        "peak rss MB": r["peak_rss_mb"],
    },
    "webhook": lambda r: {
        "p50 ms": r["lag_ms"]["p50"],
        "p95 ms": r["lag_ms"]["p95"],
        "max ms": r["lag_ms"]["max"],
        "received": r["received"],
        "repeats": r["repeated_deliveries"],
        "server cpu s": r.get("server_cpu_seconds"),
        "db cpu s": r.get("database_cpu_seconds"),
        "peak rss MB": r.get("server_peak_rss_mb"),
    },
    "hostile": lambda r: {
        "B lag p50 ms": r["healthy_lag_ms"]["p50"],
        "B lag p99 ms": r["healthy_lag_ms"]["p99"],
        "B lag max ms": r["healthy_lag_ms"]["max"],
        "B received": r["healthy_received"],
        "A requests": sum(r["hostile_requests"].values()),
        "peak rss MB": r.get("server_peak_rss_mb"),
    },
    "claimable": lambda r: {
        "p50 ms": r["lag_ms"]["p50"],
        "p95 ms": r["lag_ms"]["p95"],
        "max ms": r["lag_ms"]["max"],
        "seen": r["seen"],
    },
    "api": lambda r: (
        {
            f"{e['endpoint']} {k}": v
            for e in r["endpoints"]
            for k, v in (
                ("p50", e["latency_ms"]["p50"]),
                ("p99", e["latency_ms"]["p99"]),
                ("req/s", e["requests_per_s"]),
                ("errors", e["errors"]),
            )
        }
        | {"peak rss MB": r.get("server_peak_rss_mb")}
    ),
    "flood": lambda r: {
        f"{phase} {name}": value
        for phase, p in r["phases"].items()
        for name, value in (
            ("client p50 ms", p["client"]["latency_ms"]["p50"]),
            ("client p99 ms", p["client"]["latency_ms"]["p99"]),
            ("client errors", p["client"]["errors"]),
            ("rss peak MB", p["server_rss_mb_peak"]),
            ("flood open after hold", p["flood_after_hold"].get("open")),
        )
    },
    "longpoll": lambda r: {
        "other tenant p50 ms": r["other_tenant"]["latency_ms"]["p50"],
        "other tenant p99 ms": r["other_tenant"]["latency_ms"]["p99"],
        "health max ms": r["health_max_ms"],
        "waits held": r["waits_held"],
        "waits answered at once": r["waits_answered_at_once"],
        "server cpu %": r["server_cpu_percent"],
        "peak rss MB": r.get("server_peak_rss_mb"),
    },
    "flows": _flows_headline,
    "retention": lambda r: {
        "worker exec/s alone": r["worker_alone"]["exec_per_s"],
        "worker exec/s while pruning": r["worker_while_pruning"]["exec_per_s"],
        "worker lag p95 ms alone": r["worker_alone"]["lag_ms"]["p95"],
        "worker lag p95 ms pruning": r["worker_while_pruning"]["lag_ms"]["p95"],
        "prune rows/s under load": r["prune_under_load"]["rows_per_s"],
        "prune s under load": r["prune_under_load"]["seconds"],
        "prune rows/s alone": r["prune_alone"]["rows_per_s"],
        "prune s alone": r["prune_alone"]["seconds"],
        "rows deleted": r["prune_alone"]["deleted"],
        "seed s": r["seed_seconds"],
    },
    "scale": lambda r: {
        **{f"idle {n} cpu %": v["idle_cpu_percent"] for n, v in r["idle"].items()},
        **{f"idle {n} rss MB": v["rss_mb"] for n, v in r["idle"].items()},
        "burst all fired s": r["burst_all_fired_seconds"],
        "burst peak rss MB": r.get("burst_server_peak_rss_mb"),
    },
}


def _summary(label: str, scenario: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, list[float]] = {}
    for run in runs:
        for name, value in HEADLINES[scenario](run).items():
            if value is not None:
                figures.setdefault(name, []).append(float(value))
    return {"config": label, "figures": {n: summarize(v) for n, v in figures.items()}}


def _print(summary: dict[str, Any]) -> None:
    print(f"\n{summary['config']}")
    for name, s in summary["figures"].items():
        spread = "" if s["min"] == s["max"] else f"  [{s['min']} .. {s['max']}]"
        print(f"  {name:<34} {s['median']:>10}{spread}")


async def main(argv: list[str] | None = None) -> int:
    """Run the suite."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--store", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--api-key", help="key for --url when it does not allow registering")
    parser.add_argument(
        "--scenarios", default="worker,claimable,webhook,hostile,api,scale,embedded"
    )
    parser.add_argument("--protocols", default="first,random,next,batch")
    parser.add_argument("--clients", default="lite,httpx", help="lite,httpx")
    parser.add_argument(
        "--controls",
        default="none",
        help="worker: run controls on every cue, variants run in turn: none, or "
        "priority, concurrency, rate joined by + (e.g. none,priority+concurrency)",
    )
    parser.add_argument("--executions", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10, help="claims per batch request")
    parser.add_argument("--webhooks", type=int, default=200)
    parser.add_argument(
        "--spread", type=float, default=3.0, help="seconds the webhooks (claimable cues) span"
    )
    parser.add_argument(
        "--tight-poll", action="store_true", help="claimable scenario without long-poll"
    )
    parser.add_argument(
        "--hostile-cues", type=int, default=300, help="account A's misbehaving webhook cues"
    )
    parser.add_argument("--requests", type=int, default=2000, help="per API endpoint")
    parser.add_argument("--idle-cues", default="10000,100000")
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--flood", type=int, default=1000, help="flood: idle connections")
    parser.add_argument("--bodies", type=int, default=300, help="flood: held 1 MB bodies")
    parser.add_argument("--waits", type=int, default=3000, help="longpoll: concurrent waits")
    parser.add_argument(
        "--flows", default="handoff,chain,fanout", help="flows parts: handoff,chain,fanout,cluster"
    )
    parser.add_argument("--handoffs", type=int, default=200, help="flows handoff: runs")
    parser.add_argument("--runs", type=int, default=500, help="flows chain: runs started at once")
    parser.add_argument("--items", type=int, default=1000, help="flows fanout: for_each items")
    parser.add_argument("--flow-protocol", default="batch", help="flows chain: batch or next")
    parser.add_argument(
        "--seeded", type=int, default=1_000_000, help="retention: old executions to prune"
    )
    parser.add_argument(
        "--prune-batch", type=int, default=1000, help="retention: rows per prune statement"
    )
    parser.add_argument(
        "--retention-protocol", default="batch", help="retention: the workers' protocol"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--receiver-host", default="127.0.0.1")
    parser.add_argument("--server-log", help="append the started servers' output here")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="processes of each started server (cueflow serve --workers N; PostgreSQL only)",
    )
    parser.add_argument("--out", default="benchmarks/results/latest.json")
    args = parser.parse_args(argv)
    if args.server_workers > 1 and not args.url and args.store != "postgresql":
        parser.error("--server-workers above 1 needs --store postgresql")

    report: dict[str, Any] = {
        "command": " ".join([sys.executable, "-m", "benchmarks", *(argv or sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "runs": [],
        "summary": [],
    }
    for label, scenario, params in _configs(args):
        if args.server_workers > 1 and not args.url:
            label += f" x{args.server_workers} processes"
            params = {**params, "server_workers": args.server_workers}
        runs = []
        for n in range(args.repeat):
            print(f"{label}: run {n + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            result = await _run_one(args, scenario, params)
            result["config"] = label
            runs.append(result)
            report["runs"].append(result)
        summary = _summary(label, scenario, runs)
        report["summary"].append(summary)
        _print(summary)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
