"""``cueflow executions``: list, show and replay executions on a server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import typer

from cueflow.commands.output import print_json, say, show_fields, show_table, when
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect

executions_app = typer.Typer(
    help="Inspect executions (the runs of cues) and replay them.", no_args_is_help=True
)

ExecutionId = Annotated[
    str, typer.Argument(help="The execution's id (a UUID).", show_default=False)
]

EXECUTION_COLUMNS = ("ID", "STATUS", "SCHEDULED (UTC)", "TRIES", "OUTCOME", "CUE")


def outcome_text(execution: dict[str, Any]) -> str | None:
    """An execution's outcome in a few words: ``ok: <result>`` or ``failed: <error>``."""
    outcome = execution.get("outcome")
    if not outcome:
        return None
    detail = outcome.get("result") if outcome.get("success") else outcome.get("error")
    detail = (detail or "").strip().replace("\n", " ")
    if len(detail) > 60:
        detail = detail[:57] + "..."
    label = "ok" if outcome.get("success") else "failed"
    return f"{label}: {detail}" if detail else label


def waiting_text(execution: dict[str, Any]) -> str | None:
    """What a held-back execution waits for, in a few words (``None``: it waits for nothing
    but a worker or its time)."""
    waits = execution.get("waiting_for")
    if not waits:
        return None
    key = f" (key {waits['key']})" if waits.get("key") else ""
    if waits.get("reason") == "concurrency":
        return f"concurrency: {waits.get('in_flight')} of {waits.get('limit')} in flight{key}"
    until = when(waits.get("until"))
    room = f", room at {until} UTC" if until else ""
    period = waits.get("period_seconds")
    return f"rate limit: {waits.get('limit')} per {period}s{key}{room}"


def show_executions(
    executions: Iterable[dict[str, Any]], *, with_cue: bool = True, **options: Any
) -> None:
    """Executions as a table (the cue column only when they may belong to several cues)."""
    columns = [c for c in EXECUTION_COLUMNS if with_cue or c != "CUE"]
    rows = [
        (
            e["id"],
            f"{e['status']} ({_reason(e)})" if e.get("waiting_for") else e["status"],
            when(e.get("scheduled_for")),
            e.get("attempts"),
            outcome_text(e),
            *([e["cue_id"]] if with_cue else []),
        )
        for e in executions
    ]
    show_table(columns, rows, keep=("ID", "STATUS", "TRIES"), **options)


def _reason(execution: dict[str, Any]) -> str:
    """The limit a held-back execution waits for, in a word."""
    reason = str(execution["waiting_for"].get("reason", "limit"))
    return reason.replace("_", " ")


@executions_app.command("list")
def list_executions(
    cue: Annotated[str | None, typer.Option(help="Only this cue's executions.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only these statuses, comma-separated (pending,delivering,success,...)."),
    ] = None,
    worker: Annotated[
        str | None, typer.Option(help="Only those claimed by this worker id.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Page size.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List executions, newest first."""
    with connect(api_url, api_key) as api:
        page = api.executions.list(
            cue_id=cue, status__in=status, worker_id=worker, limit=limit, offset=offset
        ).wire()
    if as_json:
        print_json(page)
        return
    show_executions(page["executions"], with_cue=cue is None, empty="No executions.")
    if page.get("has_more"):
        shown = len(page["executions"])
        say(f"[dim]{shown} of {page['total']} shown; --offset {offset + shown} for more[/dim]")


@executions_app.command("show")
def show(
    execution_id: ExecutionId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one execution with its outcome."""
    with connect(api_url, api_key) as api:
        execution = api.executions.get(execution_id).wire()
    if as_json:
        print_json(execution)
        return
    outcome = execution.get("outcome") or {}
    fields: list[tuple[str, Any]] = [
        ("id", execution["id"]),
        ("cue", execution["cue_id"]),
        ("status", execution["status"]),
        ("waiting for", waiting_text(execution)),
        ("priority", execution.get("priority") or None),
        ("scheduled for (UTC)", when(execution.get("scheduled_for"))),
        ("triggered by", execution.get("triggered_by")),
        ("attempts", execution.get("attempts")),
        ("worker", execution.get("claimed_by_worker")),
        ("started (UTC)", when(execution.get("started_at"))),
        ("delivered (UTC)", when(execution.get("delivered_at"))),
        ("http status", execution.get("http_status")),
        ("error", execution.get("error_message")),
    ]
    if outcome:
        fields += [
            ("outcome", "success" if outcome.get("success") else "failure"),
            ("outcome state", execution.get("outcome_state")),
            ("result", outcome.get("result")),
            ("outcome error", outcome.get("error")),
            ("metadata", outcome.get("metadata")),
            ("recorded (UTC)", when(outcome.get("recorded_at"))),
        ]
    show_fields([(name, value) for name, value in fields if value not in (None, "", {})])


@executions_app.command("replay")
def replay(
    execution_id: ExecutionId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a finished execution's cue again, now, as a new execution."""
    with connect(api_url, api_key) as api:
        run = api.executions.replay(execution_id).wire()
    if as_json:
        print_json(run)
        return
    say(
        f"Replayed [bold]{execution_id}[/bold] as execution [bold]{run['id']}[/bold] "
        f"of cue {run['cue_id']}"
    )
