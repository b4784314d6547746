"""How cost grows: the worker scenario swept over worker loops (K) and queue sizes (N) for
claim-next and batch claims, and the webhook burst at several sizes, on each store.

    python -m benchmarks.curves                                  # the whole sweep (long)
    python -m benchmarks.curves --store sqlite --workers 1,4 --executions 300,3000 \\
        --protocols next --webhooks 200 --out benchmarks/results/curves-small.json

For each point it prints executions (deliveries) per second and the server's CPU per execution
(milliseconds); it writes every run's figures as JSON (``--out``), a Markdown table
(``--table``) and a plot (``--plot``, PNG, drawn with matplotlib). A duplicate claim or a
repeated delivery in any run makes the sweep exit with status 1 after printing what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import webhook_latency, worker_throughput
from benchmarks.target import ServerTarget


@dataclass
class Point:
    """One measured point of a curve."""

    store: str
    kind: str
    """``next``, ``batch`` or ``webhook``."""
    workers: int | None
    size: int
    per_second: float
    cpu_ms_per_item: float | None
    lag_p95_ms: float | None
    duplicates: int
    """Claims made twice (worker) or deliveries received twice (webhook)."""
    missing: int = 0
    """Webhook deliveries not received within a minute of the burst."""

    def label(self) -> str:
        """The curve this point belongs to."""
        loops = f" K={self.workers}" if self.workers is not None else ""
        return f"{self.store} {self.kind}{loops}"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def sweep(workers: list[int], sizes: list[int], shape: str) -> list[tuple[int, int]]:
    """The (K, N) points to measure: every pair (``grid``), or (``cross``) every K at the
    middle N and every N at K=4 (or the K nearest it), which shows both curves in a fraction
    of the grid's time (its N=30,000 points dominate it)."""
    if shape == "grid" or not workers or not sizes:
        return [(k, n) for k in workers for n in sizes]
    middle = sizes[len(sizes) // 2]
    pivot = min(workers, key=lambda k: abs(k - 4))
    points = [(k, middle) for k in workers]
    points += [(pivot, n) for n in sizes if n != middle]
    return sorted(points)


async def _worker_point(store: str, protocol: str, workers: int, size: int) -> Point:
    target = await asyncio.to_thread(ServerTarget, store)
    try:
        r = await worker_throughput.run(
            target, executions=size, workers=workers, protocol=protocol, client="lite"
        )
    finally:
        await asyncio.to_thread(target.close)
    cpu = r.get("server_cpu_seconds")
    return Point(
        store,
        protocol,
        workers,
        size,
        r["exec_per_s"],
        None if cpu is None else round(1000 * cpu / size, 3),
        r["lag_ms"]["p95"],
        r["duplicate_claims"],
    )


async def _webhook_point(store: str, size: int) -> Point:
    target = await asyncio.to_thread(ServerTarget, store)
    try:
        r = await webhook_latency.run(target, size, spread=0.0)
    finally:
        await asyncio.to_thread(target.close)
    cpu = r.get("server_cpu_seconds")
    received = max(r["received"], 1)
    seconds = max(r["lag_ms"]["max"] / 1000, 1e-3)
    return Point(
        store,
        "webhook",
        None,
        size,
        round(received / seconds, 1),
        None if cpu is None else round(1000 * cpu / received, 3),
        r["lag_ms"]["p95"],
        r["repeated_deliveries"],
        size - r["received"],
    )


def table(points: list[Point]) -> str:
    """The points as a Markdown table, one row per point."""
    lines = [
        "| store | kind | K | N | per s | server CPU ms / item | lag p95 ms | twice | missing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        loops = "" if p.workers is None else str(p.workers)
        cpu = "" if p.cpu_ms_per_item is None else f"{p.cpu_ms_per_item:.2f}"
        lag = "" if p.lag_p95_ms is None else f"{p.lag_p95_ms:.0f}"
        lines.append(
            f"| {p.store} | {p.kind} | {loops} | {p.size:,} | {p.per_second:,.0f} | {cpu} "
            f"| {lag} | {p.duplicates} | {p.missing} |"
        )
    return "\n".join(lines) + "\n"


def _series(points: list[Point], by: str) -> dict[str, list[Point]]:
    """The points as curves along ``by`` (``"size"``: one curve per store, kind and K;
    ``"workers"``: one per store, kind and N), keeping curves of two points or more."""
    curves: dict[str, list[Point]] = {}
    for p in points:
        if by == "size":
            label = p.label()
        elif p.workers is not None:
            label = f"{p.store} {p.kind} N={p.size:,}"
        else:
            continue
        curves.setdefault(label, []).append(p)
    return {label: curve for label, curve in sorted(curves.items()) if len(curve) > 1}


def plot(points: list[Point], path: Path) -> None:
    """Server CPU per item and items per second, against the items due at once (N, log
    scale; top) and against the worker loops (K, log scale; bottom), one line per curve:
    solid for SQLite, dashed for PostgreSQL (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    colours = plt.get_cmap("tab10")
    for row, (by, x_label) in enumerate(
        (("size", "items due at once (N)"), ("workers", "worker loops (K)"))
    ):
        curves = _series(points, by)
        for index, (label, curve) in enumerate(curves.items()):
            curve.sort(key=lambda p: p.size if by == "size" else (p.workers or 0))
            xs = [p.size if by == "size" else p.workers for p in curve]
            style = "-" if curve[0].store == "sqlite" else "--"
            colour = colours(index % 10)
            cpu = [p.cpu_ms_per_item or 0 for p in curve]
            axes[row][0].plot(xs, cpu, style, color=colour, marker="o", label=label)
            rate = [p.per_second for p in curve]
            axes[row][1].plot(xs, rate, style, color=colour, marker="o", label=label)
        for ax, title in ((axes[row][0], "server CPU ms per item"), (axes[row][1], "items/s")):
            ax.set_xscale("log")
            ax.set_xlabel(x_label)
            ax.set_title(title)
            ax.grid(True, alpha=0.3)
        if curves:
            axes[row][1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def main(argv: list[str] | None = None) -> int:
    """Run the sweep."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curves", description=__doc__)
    parser.add_argument("--store", default="sqlite,postgresql")
    parser.add_argument("--protocols", default="next,batch")
    parser.add_argument("--workers", default="1,4,16,64", help="worker loops (K)")
    parser.add_argument("--executions", default="300,3000,30000", help="queue sizes (N)")
    parser.add_argument("--webhooks", default="200,2000,10000", help="burst sizes; '' for none")
    parser.add_argument(
        "--shape",
        choices=("grid", "cross"),
        default="grid",
        help="grid: every K with every N; cross: every K at the middle N, every N at K=4",
    )
    parser.add_argument(
        "--from-json", help="measure nothing: write the table and plot of an earlier --out"
    )
    parser.add_argument("--out", default="benchmarks/results/curves.json")
    parser.add_argument("--table", default="benchmarks/results/curves.md")
    parser.add_argument("--plot", default="benchmarks/results/curves.png")
    args = parser.parse_args(argv)
    if args.from_json:
        earlier = [Point(**p) for p in json.loads(Path(args.from_json).read_text())["points"]]
        Path(args.table).write_text(table(earlier))
        plot(earlier, Path(args.plot))
        print(table(earlier))
        return 0

    points: list[Point] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    shape = sweep(_ints(args.workers), _ints(args.executions), args.shape)
    for store in args.store.split(","):
        for protocol in [p for p in args.protocols.split(",") if p]:
            for workers, size in shape:
                print(f"{store} {protocol} K={workers} N={size} ...", file=sys.stderr)
                point = await _worker_point(store, protocol, workers, size)
                print(table([point]).splitlines()[-1], flush=True)
                points.append(point)
        for size in _ints(args.webhooks):
            print(f"{store} webhook burst N={size} ...", file=sys.stderr)
            point = await _webhook_point(store, size)
            print(table([point]).splitlines()[-1], flush=True)
            points.append(point)
    report = {
        "command": " ".join([sys.executable, "-m", "benchmarks.curves", *(argv or sys.argv[1:])]),
        "started": started,
        "points": [vars(p) for p in points],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    Path(args.table).write_text(table(points))
    plot(points, Path(args.plot))
    print("\n" + table(points))
    print(f"wrote {args.out}, {args.table} and {args.plot}")
    wrong = [p for p in points if p.duplicates or p.missing]
    for p in wrong:
        print(
            f"WRONG: {p.label()} N={p.size}: {p.duplicates} twice, {p.missing} missing",
            file=sys.stderr,
        )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
