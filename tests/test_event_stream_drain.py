"""SIGTERM on a real ``cueflow serve`` with the dashboard's live streams open
(``GET /v1/events/stream``): each stream gets ``drain`` and ends at once, and none holds the
server past its ``--graceful-timeout`` (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.drain_support import register, served

STREAMS = 2


def test_sigterm_with_event_streams_open_exits_within_the_grace(
    database_url: str, tmp_path: Path
) -> None:
    grace = 2.0
    with served(database_url, tmp_path, "--graceful-timeout", str(grace)) as node:
        auth = register(node.base)
        opened = threading.Barrier(STREAMS + 1, timeout=30)
        endings: list[str] = []

        def listen() -> None:
            url = f"{node.base}/v1/events/stream"
            with httpx.stream("GET", url, headers=auth, timeout=60) as response:
                lines = response.iter_lines()
                for line in lines:
                    if line.startswith("event: hello"):
                        opened.wait()
                        break
                last = ""
                for line in lines:
                    if line.startswith("event: "):
                        last = line.removeprefix("event: ")
                endings.append(last)

        threads = [threading.Thread(target=listen, daemon=True) for _ in range(STREAMS)]
        for thread in threads:
            thread.start()
        opened.wait()
        sent = node.terminate()
        took = node.wait_exit(sent)
        for thread in threads:
            thread.join(10)
    print(f"\nexit after SIGTERM with {STREAMS} event streams open: {took:.2f} s")
    assert took < grace + 8
    assert endings == ["drain"] * STREAMS
