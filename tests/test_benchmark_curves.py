"""The curves sweep (``python -m benchmarks.curves``) measures the points its shape names."""

from benchmarks.curves import Point, sweep, table


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
