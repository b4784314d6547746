"""``cueflow cues backfill``: run a cue for the scheduled times of a past window (cueflow
extension ``POST /v1/cues/{id}/backfill``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cueflow.commands.cues import CueId, parse_time
from cueflow.commands.output import print_json, say, show_table, when
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect
from cueflow.run_controls import Overlap


def backfill(
    cue_id: CueId,
    start: Annotated[
        str,
        typer.Option(
            parser=parse_time,
            metavar="TIME",
            help="First time of the window (ISO-8601, naive means UTC), included.",
            show_default=False,
        ),
    ],
    end: Annotated[
        str,
        typer.Option(
            parser=parse_time,
            metavar="TIME",
            help="End of the window, excluded; times after now are left to the scheduler.",
            show_default=False,
        ),
    ],
    overlap_policy: Annotated[
        Overlap | None,
        typer.Option(help="Overlap policy among the runs (default: the cue's)."),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a cue once per scheduled time in [--start, --end) that has passed (at most 1000);
    times that already have a run are skipped."""
    body: dict[str, str] = {"start": start, "end": end}
    if overlap_policy is not None:
        body["overlap_policy"] = overlap_policy.value
    with connect(api_url, api_key) as api:
        result = api.cues.backfill(cue_id, body).wire()
    if as_json:
        print_json(result)
        return
    say(
        f"Backfilled cue [bold]{result['cue_id']}[/bold]: {result['created']} run(s) created, "
        f"{result['skipped_existing']} time(s) already had a run"
    )
    rows = [(r["id"], when(r["scheduled_for"]), r["status"]) for r in result["executions"]]
    if rows:
        show_table(["ID", "SCHEDULED FOR", "STATUS"], rows)
