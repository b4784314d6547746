"""``cueflow cues``: list, show, create, pause, resume, fire and delete cues on a server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from cueflow.commands import cue_controls as controls
from cueflow.commands.executions import show_executions
from cueflow.commands.output import print_json, say, show_fields, show_table, warn, when
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect
from cueflow.states import CueStatus, ScheduleType

cues_app = typer.Typer(help="Manage cues: schedules that create executions.", no_args_is_help=True)

CueId = Annotated[str, typer.Argument(help="The cue's id (cue_...).", show_default=False)]

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> int:
    """``90``, ``30s``, ``5m``, ``2h`` or ``1d`` as a whole number of seconds (at least 1)."""
    found = _DURATION.match(value.strip().lower())
    if not found or int(found.group(1)) == 0:
        raise typer.BadParameter(f"{value!r} is not a duration like 90, 30s, 5m, 2h or 1d")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def parse_time(value: str) -> str:
    """An ISO-8601 time (naive means UTC) or ``+DURATION`` from now, as an ISO string."""
    if value.startswith("+"):
        moment = datetime.now(UTC) + timedelta(seconds=parse_duration(value[1:]))
        return moment.isoformat()
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (2026-07-01T09:00:00Z) or +DURATION (+5m)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def parse_payload(value: str) -> dict[str, Any]:
    """A JSON object given on the command line."""
    try:
        payload = json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise typer.BadParameter('must be a JSON object, like \'{"task": "report"}\'')
    return payload


def parse_header(value: str) -> tuple[str, str]:
    """A ``Name: value`` header."""
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{value!r} is not a header like 'X-Token: abc'")
    return name.strip(), content.strip()


def schedule_text(schedule: dict[str, Any]) -> str:
    """A schedule in a few words: ``cron 0 9 * * * (Europe/Paris)``, ``every 300s``,
    ``once at 2026-07-01 09:00:00``."""
    kind = schedule.get("type")
    if kind == ScheduleType.INTERVAL:
        return f"every {schedule.get('interval_seconds')}s"
    if kind == ScheduleType.ONCE:
        return f"once at {when(schedule.get('at'))}"
    return f"cron {schedule.get('cron')} ({schedule.get('timezone', 'UTC')})"


class MisfirePolicy(StrEnum):
    """A cue's ``misfire_policy``."""

    fire_once = "fire_once"
    skip = "skip"
    fire_all = "fire_all"


CUE_COLUMNS: tuple[str, ...] = ("ID", "NAME", "STATUS", "TRANSPORT", "SCHEDULE", "NEXT RUN (UTC)")
CUE_COLUMNS += ("RUNS", "CONTROLS")


def cue_row(cue: dict[str, Any]) -> tuple[Any, ...]:
    """One cue as a row of :data:`CUE_COLUMNS`."""
    return (
        cue["id"],
        cue["name"],
        cue["status"],
        cue["transport"],
        schedule_text(cue.get("schedule") or {}),
        when(cue.get("next_run")),
        cue.get("run_count"),
        controls.controls_cell(cue),
    )


def show_cue(cue: dict[str, Any]) -> None:
    """A cue's details."""
    callback = cue.get("callback") or {}
    fields: list[tuple[str, Any]] = [
        ("id", cue["id"]),
        ("name", cue["name"]),
        ("description", cue.get("description")),
        ("status", cue["status"]),
        ("transport", cue["transport"]),
        ("schedule", schedule_text(cue.get("schedule") or {})),
        ("next run (UTC)", when(cue.get("next_run"))),
        ("last run (UTC)", when(cue.get("last_run"))),
        ("runs", cue.get("run_count")),
        ("payload", cue.get("payload")),
        ("retry", cue.get("retry")),
        *controls.control_fields(cue),
    ]
    if callback.get("url"):
        fields.insert(5, ("callback", f"{callback.get('method', 'POST')} {callback['url']}"))
    show_fields(fields)


@cues_app.command("list")
def list_cues(
    status: Annotated[
        str | None,
        typer.Option(help="Only cues in this status (active, paused, completed, failed)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List your cues, newest first."""
    with connect(api_url, api_key) as api:
        page = api.cues.list(status=status, limit=limit, offset=offset).wire()
    if as_json:
        print_json(page)
        return
    cues = page["cues"]
    show_table(CUE_COLUMNS, [cue_row(cue) for cue in cues], empty="No cues.")
    shown = len(cues)
    if page["total"] > offset + shown:
        say(f"[dim]{shown} of {page['total']} shown; --offset {offset + shown} for more[/dim]")


@cues_app.command("show")
def show(
    cue_id: CueId,
    executions: Annotated[int, typer.Option(min=1, max=100, help="Recent executions shown.")] = 10,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one cue and its latest executions."""
    with connect(api_url, api_key) as api:
        cue = api.cues.get(cue_id, execution_limit=executions).wire()
    if as_json:
        print_json(cue)
        return
    show_cue(cue)
    say("")
    show_executions(
        cue.get("executions") or [],
        with_cue=False,
        title=f"Executions ({cue.get('execution_total', 0)} in all)",
        empty="No executions yet.",
    )


@cues_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Unique name of the cue.", show_default=False)],
    cron: Annotated[str | None, typer.Option(help="Recurring: a cron expression.")] = None,
    every: Annotated[
        int | None,
        typer.Option(
            parser=parse_duration, metavar="DURATION", help="Recurring: an interval (30s, 5m, 2h)."
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            parser=parse_time, metavar="TIME", help="Once: an ISO-8601 time (UTC if naive) or +5m."
        ),
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone of --cron.")] = "UTC",
    webhook: Annotated[
        str | None, typer.Option(metavar="URL", help="Deliver by webhook to this URL.")
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker", help="Deliver to workers (the default without --webhook).")
    ] = False,
    method: Annotated[str, typer.Option(help="Webhook HTTP method.")] = "POST",
    header: Annotated[
        list[str] | None, typer.Option(metavar="'NAME: VALUE'", help="Webhook header (repeatable).")
    ] = None,
    payload: Annotated[
        dict[str, Any] | None,
        typer.Option(parser=parse_payload, metavar="JSON", help="JSON object sent with each run."),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="Sets payload.task, the key workers route on.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    max_attempts: Annotated[
        int | None, typer.Option(min=1, max=10, help="Attempts before an execution fails.")
    ] = None,
    backoff: Annotated[
        str | None, typer.Option(metavar="MINUTES", help="Retry waits in minutes, e.g. 1,5,15.")
    ] = None,
    misfire_policy: Annotated[
        MisfirePolicy | None, typer.Option(help="What runs missed while the server was down do.")
    ] = None,
    overlap_policy: controls.OverlapOption = None,
    priority: controls.PriorityOption = None,
    concurrency: controls.ConcurrencyOption = None,
    rate_limit: controls.RateLimitOption = None,
    required_payload_key: controls.RequiredKeysOption = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a cue: one of --cron, --every or --at, and --webhook URL or --worker."""
    if sum(x is not None for x in (cron, every, at)) != 1:
        raise typer.BadParameter(
            "give exactly one of --cron, --every and --at", param_hint="schedule"
        )
    if webhook and worker:
        raise typer.BadParameter(
            "--webhook and --worker exclude each other", param_hint="transport"
        )
    body: dict[str, Any] = {"name": name, "schedule": _schedule(cron, every, at, timezone)}
    body["payload"] = {**(payload or {}), **({"task": task} if task else {})}
    if webhook:
        headers = dict(parse_header(h) for h in header or [])
        body.update(
            transport="webhook", callback={"url": webhook, "method": method, "headers": headers}
        )
    else:
        body["transport"] = "worker"
    if description is not None:
        body["description"] = description
    if max_attempts is not None or backoff is not None:
        body["retry"] = {
            **({"max_attempts": max_attempts} if max_attempts is not None else {}),
            **({"backoff_minutes": _minutes(backoff)} if backoff is not None else {}),
        }
    if misfire_policy:
        body["misfire_policy"] = misfire_policy.value
    body.update(
        controls.controls_body(
            overlap_policy, priority, concurrency, rate_limit, required_payload_key
        )
    )
    with connect(api_url, api_key) as api:
        cue = api.cues.create(body).wire()
    if as_json:
        print_json(cue)
        return
    say(f"[green]Created cue[/green] [bold]{cue['id']}[/bold]")
    show_cue(cue)
    if cue.get("warning"):
        warn(cue["warning"])


def _schedule(cron: str | None, every: int | None, at: str | None, tz: str) -> dict[str, Any]:
    if cron is not None:
        return {"type": ScheduleType.RECURRING.value, "cron": cron, "timezone": tz}
    if every is not None:
        return {"type": ScheduleType.INTERVAL.value, "interval_seconds": every, "timezone": tz}
    return {"type": ScheduleType.ONCE.value, "at": at, "timezone": tz}


def _minutes(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not a list of minutes like 1,5,15", param_hint="--backoff"
        ) from exc


def _set_status(cue_id: str, status: str, api_url: str, api_key: str | None, as_json: bool) -> None:
    with connect(api_url, api_key) as api:
        cue = api.cues.update(cue_id, {"status": status}).wire()
    if as_json:
        print_json(cue)
        return
    verb = "Paused" if status == CueStatus.PAUSED else "Resumed"
    nxt = when(cue.get("next_run"))
    say(
        f"{verb} cue [bold]{cue['id']}[/bold] ({cue['name']})"
        + (f", next run {nxt} UTC" if nxt else "")
    )


@cues_app.command("pause")
def pause(
    cue_id: CueId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Pause a cue: it stops firing until resumed."""
    _set_status(cue_id, CueStatus.PAUSED.value, api_url, api_key, as_json)


@cues_app.command("resume")
def resume(
    cue_id: CueId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Resume a paused cue (runs missed while paused are skipped)."""
    _set_status(cue_id, CueStatus.ACTIVE.value, api_url, api_key, as_json)


@cues_app.command("fire")
def fire(
    cue_id: CueId,
    at: Annotated[
        str | None,
        typer.Option(parser=parse_time, metavar="TIME", help="Run at this time instead of now."),
    ] = None,
    payload: Annotated[
        dict[str, Any] | None,
        typer.Option(parser=parse_payload, metavar="JSON", help="Payload override for this run."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace/--merge", help="Replace the cue's payload, or merge over it.")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="A repeat with this key within 24 h fires nothing new.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a cue now (or at --at), outside its schedule."""
    body: dict[str, Any] = {"send_at": at} if at else {}
    if payload is not None:
        body.update(payload_override=payload, merge_strategy="replace" if replace else "merge")
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    with connect(api_url, api_key) as api:
        run = api.cues.fire(cue_id, body).wire()
    if as_json:
        print_json(run)
        return
    say(
        f"Fired cue [bold]{run['cue_id']}[/bold]: execution [bold]{run['id']}[/bold] "
        f"scheduled for {when(run['scheduled_for'])} UTC"
    )


@cues_app.command("delete")
def delete(
    cue_id: CueId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete a cue and its execution history."""
    if not yes:
        typer.confirm(f"Delete cue {cue_id} and all its executions?", abort=True)
    with connect(api_url, api_key) as api:
        api.cues.delete(cue_id)
    if as_json:
        print_json({"id": cue_id, "deleted": True})
        return
    say(f"Deleted cue [bold]{cue_id}[/bold]")
