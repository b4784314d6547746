"""``POST /v1/cues/{id}/backfill`` (cueflow extension): run a cue for the scheduled times of a
past window (:mod:`cueflow.backfill`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.backfill import Backfill
from cueflow.schema_examples import with_example
from cueflow.schemas import OverlapPolicy

router = APIRouter(tags=["cues"])


class BackfillRequest(BaseModel):
    """The window ``start <= t < end`` (naive datetimes are UTC) and, optionally, the overlap
    policy to apply instead of the cue's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=with_example)

    start: datetime
    end: datetime
    overlap_policy: OverlapPolicy | None = None


class BackfilledRun(BaseModel):
    """One run a backfill created."""

    id: str
    scheduled_for: datetime
    status: str
    error_message: str | None = None


class BackfillResult(BaseModel):
    """What a backfill did."""

    model_config = ConfigDict(json_schema_extra=with_example)

    cue_id: str
    created: int
    skipped_existing: int
    executions: list[BackfilledRun]
    skipped_times: list[datetime]


def backfill_json(result: Backfill) -> dict[str, object]:
    """A backfill's answer on the wire."""
    return {
        "cue_id": result.cue_id,
        "created": len(result.created),
        "skipped_existing": len(result.skipped_existing),
        "executions": [
            {
                "id": row.id,
                "scheduled_for": row.scheduled_for,
                "status": row.status,
                "error_message": row.error_message,
            }
            for row in result.created
        ],
        "skipped_times": result.skipped_existing,
    }


@router.post("/v1/cues/{cue_id}/backfill", status_code=201, response_model=BackfillResult)
async def backfill(
    cue_id: str, body: BackfillRequest, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Run a cue once per scheduled time of a past window (at most 1000)."""
    result = await engine.backfill_cue(
        user, cue_id, body.start, body.end, overlap_policy=body.overlap_policy
    )
    return json_response(backfill_json(result), 201)
