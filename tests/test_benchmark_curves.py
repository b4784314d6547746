"""The curves sweep (``python -m benchmarks.curves``) measures the points its shape names."""

import asyncio
import json
from pathlib import Path

from benchmarks.curves import Point, _series, main, sweep, table


def test_the_grid_measures_every_worker_count_with_every_queue_size() -> None:
    assert sweep([1, 4], [300, 3000], "grid") == [(1, 300), (1, 3000), (4, 300), (4, 3000)]


def test_the_cross_measures_every_worker_count_and_every_queue_size_once() -> None:
    points = sweep([1, 4, 16, 64], [300, 3000, 30000], "cross")
    assert points == [(1, 3000), (4, 300), (4, 3000), (4, 30000), (16, 3000), (64, 3000)]
    assert {k for k, _ in points} == {1, 4, 16, 64}
    assert {n for _, n in points} == {300, 3000, 30000}


def test_no_workers_means_no_worker_points() -> None:
    assert sweep([], [300], "cross") == []


def test_the_table_shows_duplicates_and_missing_deliveries() -> None:
    row = table([Point("sqlite", "webhook", None, 2000, 950.0, 1.2, 1400.0, 1, 2)])
    assert row.splitlines()[-1] == "| sqlite | webhook |  | 2,000 | 950 | 1.20 | 1400 | 1 | 2 |"


def _point(store: str, kind: str, workers: int | None, size: int) -> Point:
    return Point(store, kind, workers, size, 100.0, 1.0, 10.0, 0)


def test_the_plot_draws_size_curves_and_worker_curves_of_two_points_or_more() -> None:
    points = [
        _point("sqlite", "next", 4, 300),
        _point("sqlite", "next", 4, 3000),
        _point("sqlite", "next", 16, 3000),
        _point("sqlite", "webhook", None, 200),
    ]
    assert list(_series(points, "size")) == ["sqlite next K=4"]
    assert list(_series(points, "workers")) == ["sqlite next N=3,000"]


def test_an_earlier_sweep_is_drawn_again_without_measuring(tmp_path: Path) -> None:
    points = [_point("sqlite", "batch", 4, 300), _point("sqlite", "batch", 4, 3000)]
    earlier = tmp_path / "curves.json"
    earlier.write_text(json.dumps({"points": [vars(p) for p in points]}))
    table_md, png = tmp_path / "curves.md", tmp_path / "curves.png"
    argv = ["--from-json", str(earlier), "--table", str(table_md), "--plot", str(png)]
    assert asyncio.run(main(argv)) == 0
    assert table_md.read_text() == table(points)
    assert png.read_bytes().startswith(b"\x89PNG")
