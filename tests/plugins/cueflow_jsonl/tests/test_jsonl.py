"""cueflow-jsonl's own tests: the public conformance suite, run against the installed plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cueflow_jsonl import JsonlTransport

from cueflow.testing import PushTransportConformance
from cueflow.transport import Delivery


@pytest.fixture
def jsonl_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "deliveries.jsonl"
    monkeypatch.setenv("CUEFLOW_JSONL_FILE", str(path))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class TestJsonlTransport(PushTransportConformance):
    @pytest.fixture
    def transport_name(self, jsonl_file: Path) -> str:
        return "jsonl"

    @pytest.fixture
    def refused_cue_fields(self) -> dict:
        return {"callback": {"url": "https://example.com/hook"}}

    @pytest.fixture
    def received_execution_ids(self, jsonl_file: Path) -> Callable[[], list[str]]:
        return lambda: [line["execution_id"] for line in lines(jsonl_file)]


@pytest.mark.asyncio
async def test_an_unwritable_file_is_a_failed_attempt_not_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUEFLOW_JSONL_FILE", str(tmp_path))  # a directory
    delivery = Delivery(
        execution_id="e1",
        cue_id="cue_1",
        cue_name="n",
        user_id="u",
        scheduled_for=datetime.now(UTC),
        attempt=1,
        payload={},
    )
    result = await JsonlTransport().deliver(delivery)
    assert result.ok is False and "cannot write" in (result.error or "")
