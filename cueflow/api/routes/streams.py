"""``GET /v1/events/stream``: the caller's execution and cue changes as server-sent events,
for the dashboard's live views (cueflow extension; :mod:`cueflow.change_feed`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from cueflow.api.deps import CurrentUser, EngineDep

router = APIRouter(prefix="/v1/events", tags=["events"])


# Not in the OpenAPI document: an event stream has no JSON shape to declare (and a client that
# walks the document would wait on it); docs/compatibility.md describes it.
@router.get("/stream", response_class=StreamingResponse, include_in_schema=False)
async def stream(request: Request, user: CurrentUser, engine: EngineDep) -> StreamingResponse:
    """``text/event-stream``: ``hello`` first, then ``executions`` (the changed executions'
    id, cue, status and update time) and ``cues`` (the cue list changed) as they happen,
    ``: heartbeat`` comments while quiet, and ``drain`` (the server is stopping) or ``bye``
    (the stream's time is up) last. Reconnect after either."""
    return StreamingResponse(
        engine.change_stream(user, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
