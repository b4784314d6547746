"""``cueflow runs``: list flow runs, show one as its DAG of steps, wait for one to end, cancel
it, send it an event.

``runs show`` draws the run's steps in the order of its definition, each indented under its
deepest parent, with its status, tries, start time, duration and output (or error). The run's
answer carries each step's ``needs`` as the run started; from a server that does not, they are
read from the flow, and said to be its current definition when the flow changed since.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from cueflow.commands.client import ApiClient, ApiError
from cueflow.commands.flow_text import dag_depths, duration, parse_json, resolve_flow
from cueflow.commands.output import (
    EXIT_RUN_FAILED,
    EXIT_STILL_RUNNING,
    fail,
    print_json,
    say,
    show_fields,
    show_table,
    text,
    warn,
    when,
)
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect
from cueflow.states import RUN_TERMINAL, RunStatus, StepStatus

runs_app = typer.Typer(
    help="Flow runs: list them, see one's steps, wait, cancel, send events.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="The run's id (run_...).", show_default=False)]
WaitTimeout = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.1, metavar="SECONDS", help="Longest wait; then exit 5, run still open."
    ),
]

RUN_COLUMNS = ("ID", "FLOW", "STATUS", "STARTED (UTC)", "FINISHED (UTC)", "TOOK")
STEP_COLUMNS = ("STEP", "NEEDS", "STATUS", "TRIES", "STARTED (UTC)", "TOOK", "OUTPUT / ERROR")
CELL_LIMIT = 80
"""Longest output or error shown in a step's row (``--json`` shows them whole)."""


def flow_names(api: ApiClient) -> dict[str, str]:
    """Flow ids to names, for the newest 100 flows (enough to label a page of runs)."""
    page = api.flows.list(limit=100)
    return {flow.id: flow.name for flow in page.flows}


def run_row(run: dict[str, Any], names: dict[str, str]) -> tuple[Any, ...]:
    """One run as a row of :data:`RUN_COLUMNS`."""
    return (
        run["id"],
        names.get(run["flow_id"], run["flow_id"]),
        run["status"],
        when(run.get("created_at")),
        when(run.get("finished_at")),
        duration(run.get("created_at"), run.get("finished_at")),
    )


def _short(value: Any) -> str:
    shown = text(value).replace("\n", " ")
    return shown if len(shown) <= CELL_LIMIT else shown[: CELL_LIMIT - 3] + "..."


def _result(step: dict[str, Any]) -> str | None:
    error = step.get("error")
    if error:
        reason = error.get("reason") if isinstance(error, dict) else error
        kind = error.get("type") if isinstance(error, dict) else None
        return _short(f"{kind}: {reason}" if kind else reason)
    return None if step.get("output") is None else _short(step["output"])


def _took(step: dict[str, Any]) -> str | None:
    if step["status"] == StepStatus.SKIPPED:
        return None
    return duration(step.get("started_at"), step.get("finished_at"))


def step_rows(run: dict[str, Any], needs: dict[str, list[str]]) -> list[tuple[Any, ...]]:
    """The run's steps (and ``for_each`` items) as rows of :data:`STEP_COLUMNS`, each step
    indented by its depth in the DAG."""
    steps: dict[str, dict[str, Any]] = run.get("steps") or {}
    depth = dag_depths(list(steps), needs)
    rows: list[tuple[Any, ...]] = []
    for step_id, step in steps.items():
        indent = "  " * depth.get(step_id, 0)
        rows.append(
            (
                indent + step_id,
                ", ".join(needs.get(step_id, [])) or None,
                step["status"],
                step.get("attempts") or None,
                when(step.get("started_at")),
                _took(step),
                _result(step),
            )
        )
        for item in step.get("items") or []:
            rows.append(
                (
                    f"{indent}  [{item['item']}]",
                    None,
                    item["status"],
                    item.get("attempts") or None,
                    when(item.get("started_at")),
                    _took(item),
                    _result(item),
                )
            )
    return rows


def definition_needs(
    flow: dict[str, Any] | None, run: dict[str, Any]
) -> tuple[dict[str, list[str]], bool]:
    """The ``needs`` of the run's steps from its ``flow``, and whether they are surely the
    run's own (``False`` when the flow changed after the run started, or is gone)."""
    steps = run.get("steps") or {}
    if steps and all("needs" in step for step in steps.values()):
        return {k: list(step["needs"]) for k, step in steps.items()}, True
    if flow is None:
        return {}, False
    needs = {s["id"]: list(s.get("needs") or []) for s in flow.get("steps") or []}
    same = flow.get("updated_at", "") <= run.get("created_at", "") and set(needs) == set(steps)
    return {k: v for k, v in needs.items() if k in steps}, same


def show_run(run: dict[str, Any], needs: dict[str, list[str]], own: bool, flow: str) -> None:
    """A run's details and its DAG of steps."""
    show_fields(
        [
            ("id", run["id"]),
            ("flow", flow),
            ("status", run["status"]),
            ("input", run.get("input")),
            ("idempotency key", run.get("idempotency_key")),
            ("started (UTC)", when(run.get("created_at"))),
            ("finished (UTC)", when(run.get("finished_at"))),
            ("took", duration(run.get("created_at"), run.get("finished_at"))),
        ]
    )
    say("")
    rows = step_rows(run, needs)
    show_table(STEP_COLUMNS, rows, keep=("STEP", "STATUS", "TRIES"), empty="No steps.")
    if not own:
        say("[dim]NEEDS as the flow is defined now (it changed after this run started)[/dim]")
    if any(str(row[-1]).endswith("...") for row in rows):
        say("[dim]Outputs are cut short: --json shows them whole.[/dim]")


def render_run(api: ApiClient, run: dict[str, Any]) -> None:
    """Fetch the run's flow (its name, its steps' ``needs``) and show the run."""
    try:
        flow: dict[str, Any] | None = api.flows.get(run["flow_id"]).wire()
    except ApiError:
        flow = None
    needs, own = definition_needs(flow, run)
    label = f"{flow['name']} ({run['flow_id']})" if flow else run["flow_id"]
    show_run(run, needs, own, label)


def wait_for_run(api: ApiClient, run_id: str, timeout: float) -> dict[str, Any]:
    """Poll the run until it ends or ``timeout`` seconds pass (first every 0.2 s, then up to
    every 2 s); returns its last state."""
    deadline = time.monotonic() + timeout
    pause = 0.2
    while True:
        run: dict[str, Any] = api.flow_runs.get(run_id).wire()
        left = deadline - time.monotonic()
        if run["status"] in RUN_TERMINAL or left <= 0:
            return run
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, 2.0)


def finish_wait(api: ApiClient, run: dict[str, Any], timeout: float, as_json: bool) -> None:
    """Print a waited-for run, and exit 0 if it succeeded, 4 if it failed or was cancelled, 5
    if it is still open after ``timeout`` seconds."""
    if as_json:
        print_json(run)
    else:
        render_run(api, run)
    status = run["status"]
    if status == RunStatus.SUCCEEDED:
        return
    if status in RUN_TERMINAL:
        failed = [s for s, step in (run.get("steps") or {}).items() if step["status"] == status]
        which = f" (steps: {', '.join(failed)})" if failed else ""
        fail(f"run {run['id']} {status}{which}", EXIT_RUN_FAILED)
    fail(f"run {run['id']} is still {status} after {timeout:g}s", EXIT_STILL_RUNNING)


@runs_app.command("list")
def list_runs(
    flow: Annotated[str | None, typer.Option(help="Only this flow's runs (name or id).")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List flow runs, newest first."""
    with connect(api_url, api_key) as api:
        flow_id = resolve_flow(api, flow)["id"] if flow else None
        page = api.flow_runs.list(
            flow_id=flow_id, status=status.value if status else None, limit=limit, offset=offset
        ).wire()
        names = {} if as_json else flow_names(api)
    if as_json:
        print_json(page)
        return
    runs = page["runs"]
    show_table(
        RUN_COLUMNS, [run_row(r, names) for r in runs], keep=("ID", "STATUS"), empty="No runs."
    )
    if page["total"] > offset + len(runs):
        say(
            f"[dim]{len(runs)} of {page['total']} shown; "
            f"--offset {offset + len(runs)} for more[/dim]"
        )


@runs_app.command("show")
def show(
    run_id: RunId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a run: its steps as a DAG, with each one's status, tries, timing and output."""
    with connect(api_url, api_key) as api:
        run = api.flow_runs.get(run_id).wire()
        if as_json:
            print_json(run)
            return
        render_run(api, run)


@runs_app.command("wait")
def wait(
    run_id: RunId,
    timeout: WaitTimeout = 600,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Wait for a run to end and show it; exit 0 if it succeeded, 4 if it failed or was
    cancelled, 5 if it is still open after --timeout."""
    with connect(api_url, api_key) as api:
        finish_wait(api, wait_for_run(api, run_id, timeout), timeout, as_json)


@runs_app.command("cancel")
def cancel(
    run_id: RunId,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel an open run, for good: its open steps are cancelled."""
    with connect(api_url, api_key) as api:
        run = api.flow_runs.cancel(run_id).wire()
    if as_json:
        print_json(run)
        return
    steps = (run.get("steps") or {}).items()
    stopped = [s for s, step in steps if step["status"] == StepStatus.CANCELLED]
    which = f": cancelled {', '.join(stopped)}" if stopped else ""
    say(f"Cancelled run [bold]{run['id']}[/bold]{which}")


@runs_app.command("event")
def event(
    run_id: RunId,
    name: Annotated[str, typer.Argument(help="The event's name.", show_default=False)],
    data: Annotated[
        Any,
        typer.Option(
            parser=parse_json, metavar="JSON", help="The event's data (any JSON, or @FILE)."
        ),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Send an event to a run: its wait steps waiting for NAME resume, with --data as their
    output."""
    with connect(api_url, api_key) as api:
        answer = api.flow_runs.send_event(run_id, name, {"data": data}).wire()
    if as_json:
        print_json(answer)
        return
    resumed = answer.get("resumed") or []
    if resumed:
        say(
            f"Event [bold]{name}[/bold] resumed {', '.join(resumed)} of run "
            f"[bold]{answer['run_id']}[/bold] (now {answer['status']})"
        )
    else:
        warn(f"no step of run {answer['run_id']} waits for {name!r} (run {answer['status']})")
