"""The official Python SDK (PyPI ``cueapi-sdk``, pinned) against a live ``cueflow serve``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.official_clients import sdk


def _key(base: str) -> str:
    email = f"sdk-{uuid.uuid4().hex[:8]}@example.com"
    return httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]


@pytest.fixture
def api(official_server: str) -> Any:
    """An SDK client with a fresh account."""
    client = sdk().CueAPI(_key(official_server), base_url=official_server)
    yield client
    client.close()


def _soon(seconds: float = 600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_sdk_creates_lists_gets_updates_pauses_resumes_and_deletes_cues(api: Any) -> None:
    worker = api.cues.create(
        "nightly",
        cron="0 9 * * MON-FRI",
        timezone="America/New_York",
        transport="worker",
        payload={"task": "report"},
        description="weekday report",
    )
    assert worker.id.startswith("cue_") and worker.transport == "worker"
    assert worker.schedule.cron == "0 9 * * MON-FRI" and worker.next_run is not None
    hook = api.cues.create(
        "ping",
        at=_soon(),
        callback="http://127.0.0.1:9/hook",
        callback_method="PUT",
        callback_headers={"X-Team": "ops"},
        retry={"max_attempts": 2, "backoff_minutes": [1]},
        on_failure={"email": False, "webhook": None, "pause": True},
    )
    assert hook.callback.url == "http://127.0.0.1:9/hook" and hook.callback.method == "PUT"
    listed = api.cues.list(limit=10)
    assert listed.total == 2 and {c.id for c in listed.cues} == {worker.id, hook.id}
    assert api.cues.get(worker.id).name == "nightly"
    renamed = api.cues.update(worker.id, name="daily", cron="30 8 * * *", timezone="UTC")
    assert renamed.name == "daily" and renamed.schedule.cron == "30 8 * * *"
    assert api.cues.pause(worker.id).status == "paused"
    resumed = api.cues.resume(worker.id)
    assert resumed.status == "active" and resumed.next_run is not None
    assert api.cues.delete(hook.id) is None
    with pytest.raises(sdk().CueNotFoundError):
        api.cues.get(hook.id)


def test_sdk_fires_claims_heartbeats_reports_and_verifies(api: Any) -> None:
    cue = api.cues.create("job", at=_soon(), transport="worker", payload={"task": "t"})
    fired = api._post(f"/v1/cues/{cue.id}/fire", json={})
    assert fired["status"] == "pending" and fired["triggered_by"] == "manual_fire"
    claim = api._post(f"/v1/executions/{fired['id']}/claim", json={"worker_id": "sdk-worker"})
    assert claim["claimed"] is True and claim["lease_seconds"] == 900
    assert api.executions.heartbeat(fired["id"])["acknowledged"] is True
    with api.executions.handle(fired["id"]) as run:
        run.result = "42 rows"
    execution = api.executions.get(fired["id"])
    assert execution["status"] == "success" and execution["outcome"]["result"] == "42 rows"
    listed = api.executions.list(cue_id=cue.id, status="success")
    assert [e["id"] for e in listed["executions"]] == [fired["id"]]
    assert api.executions.mark_verification_pending(fired["id"])["outcome_state"] == (
        "verification_pending"
    )
    assert api.executions.mark_verified(fired["id"])["outcome_state"] == "verified_success"


def test_sdk_reports_failures_from_its_handle_context(api: Any) -> None:
    cue = api.cues.create("flaky", at=_soon(), transport="worker", payload={"task": "t"})
    fired = api._post(f"/v1/cues/{cue.id}/fire", json={})
    with pytest.raises(RuntimeError), api.executions.handle(fired["id"]):
        raise RuntimeError("disk full")
    execution = api.executions.get(fired["id"])
    assert execution["status"] == "failed" and execution["outcome"]["error"] == "disk full"


def test_sdk_raises_its_typed_errors_on_matching_responses(api: Any, official_server: str) -> None:
    errors = sdk()
    with pytest.raises(errors.AuthenticationError) as unauthorized:
        errors.CueAPI("cue_sk_" + "0" * 32, base_url=official_server).cues.list()
    assert unauthorized.value.status_code == 401 and unauthorized.value.code == "invalid_api_key"
    with pytest.raises(errors.CueNotFoundError):
        api.cues.get("cue_doesnotexist")
    with pytest.raises(errors.InvalidScheduleError) as invalid:
        api.cues.create("bad", cron="not a cron", transport="worker")
    assert invalid.value.code == "invalid_schedule"
    with pytest.raises(errors.InvalidScheduleError) as unprocessable:
        api.cues.create("bad-tz", cron="* * * * *", timezone="Mars/Base", transport="worker")
    assert unprocessable.value.status_code == 422
    cue = api.cues.create("once", at=_soon(), transport="worker")
    fired = api._post(f"/v1/cues/{cue.id}/fire", json={})
    api.executions.report_outcome(fired["id"], success=True)
    with pytest.raises(errors.CueAPIError) as conflict:
        api.executions.report_outcome(fired["id"], success=True)
    assert conflict.value.status_code == 409
    assert conflict.value.code == "outcome_already_recorded"


def test_sdk_raises_cue_limit_exceeded_on_403(api: Any) -> None:
    for n in range(25):
        api.cues.create(f"c{n}", cron="0 0 * * *", transport="worker")
    with pytest.raises(sdk().CueLimitExceededError) as limited:
        api.cues.create("one-too-many", cron="0 0 * * *", transport="worker")
    assert limited.value.code == "cue_limit_exceeded"


def test_sdk_raises_rate_limit_error_with_an_integer_retry_after(api: Any) -> None:
    with pytest.raises(sdk().RateLimitError) as limited:
        for _ in range(400):
            api.cues.list(limit=1)
    assert isinstance(limited.value.retry_after, int) and 1 <= limited.value.retry_after <= 60
