"""``cueflow flows``: create flows from JSON or YAML files, list, show, change and delete them,
and start runs (``--wait`` for the run's end).

Commands taking a flow accept its name or its id (``flw_...``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cueflow.commands.flow_text import dag_depths, parse_json, resolve_flow, status_markup
from cueflow.commands.output import (
    EXIT_USAGE,
    fail,
    print_json,
    say,
    show_fields,
    show_table,
    when,
)
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect
from cueflow.commands.runs import WaitTimeout, finish_wait, wait_for_run
from cueflow.states import StepType

flows_app = typer.Typer(
    help="Manage flows (DAGs of steps) and start their runs.", no_args_is_help=True
)

FlowName = Annotated[
    str, typer.Argument(help="The flow's name or id (flw_...).", show_default=False)
]
DefinitionFile = Annotated[
    Path,
    typer.Option(
        "--file",
        "-f",
        help="The flow's definition: a JSON or YAML file (.json, .yaml, .yml; - for stdin), "
        "the body of POST /v1/flows.",
        show_default=False,
    ),
]

FLOW_COLUMNS = ("ID", "NAME", "STEPS", "DESCRIPTION", "CREATED (UTC)")
STEP_COLUMNS = ("STEP", "NEEDS", "RUNS AS", "WHEN", "FOR EACH")
UPDATABLE = ("name", "description", "input_schema", "steps")
"""The definition's fields ``flows update`` sends (``PATCH /v1/flows/{id}`` takes only these)."""


def load_definition(path: Path) -> dict[str, Any]:
    """A flow definition from a JSON file, or a YAML one (``.yaml``/``.yml``, or stdin with
    ``-``); a usage error (exit 2) when it cannot be read or parsed, or is not a mapping."""
    try:
        source = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)
    try:
        if path.suffix.lower() == ".json":
            definition = json.loads(source)
        else:
            definition = yaml.safe_load(source)
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc}", EXIT_USAGE)
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML: {_yaml_problem(exc)}", EXIT_USAGE)
    if not isinstance(definition, dict):
        fail(f"{path} must hold an object with name and steps (the body of POST /v1/flows)", 2)
    return definition


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(exc).split())
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def runs_as(step: dict[str, Any]) -> str:
    """How a step runs: ``worker task=charge``, ``webhook POST URL``, ``wait for approved
    (86400s)``."""
    if step.get("type") == StepType.WAIT:
        return f"wait for {step.get('event')} ({step.get('timeout_seconds')}s)"
    transport = step.get("transport") or "worker"
    callback = step.get("callback") or {}
    if callback.get("url"):
        return f"{transport} {callback.get('method', 'POST')} {callback['url']}"
    task = (step.get("payload") or {}).get("task")
    return f"{transport} task={task}" if task else transport


def show_flow(flow: dict[str, Any]) -> None:
    """A flow's details and its steps, each indented under its deepest parent."""
    show_fields(
        [
            ("id", flow["id"]),
            ("name", flow["name"]),
            ("description", flow.get("description")),
            ("input schema", flow.get("input_schema")),
            ("created (UTC)", when(flow.get("created_at"))),
            ("updated (UTC)", when(flow.get("updated_at"))),
        ]
    )
    say("")
    steps = flow.get("steps") or []
    needs = {s["id"]: list(s.get("needs") or []) for s in steps}
    depth = dag_depths(list(needs), needs)
    rows = [
        (
            "  " * depth.get(s["id"], 0) + s["id"],
            ", ".join(needs[s["id"]]) or None,
            runs_as(s),
            s.get("when"),
            s.get("for_each"),
        )
        for s in steps
    ]
    show_table(STEP_COLUMNS, rows, keep=("STEP",), empty="No steps.")


@flows_app.command("create")
def create(
    file: DefinitionFile,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a flow from a JSON or YAML definition (docs/flows.md describes its steps)."""
    definition = load_definition(file)
    with connect(api_url, api_key) as api:
        flow = api.flows.create(definition).wire()
    if as_json:
        print_json(flow)
        return
    say(f"[green]Created flow[/green] [bold]{flow['id']}[/bold] ({flow['name']})")
    show_flow(flow)


@flows_app.command("update")
def update(
    flow: FlowName,
    file: DefinitionFile,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a flow to the file's definition (runs already started keep theirs)."""
    definition = load_definition(file)
    body = {key: definition[key] for key in UPDATABLE if key in definition}
    with connect(api_url, api_key) as api:
        changed = api.flows.update(resolve_flow(api, flow)["id"], body).wire()
    if as_json:
        print_json(changed)
        return
    say(f"Updated flow [bold]{changed['id']}[/bold] ({changed['name']})")
    show_flow(changed)


@flows_app.command("list")
def list_flows(
    limit: Annotated[int, typer.Option(min=1, max=100, help="Page size.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """List your flows, newest first."""
    with connect(api_url, api_key) as api:
        page = api.flows.list(limit=limit, offset=offset).wire()
    if as_json:
        print_json(page)
        return
    flows = page["flows"]
    rows = [
        (f["id"], f["name"], len(f.get("steps") or []), f.get("description"), when(f["created_at"]))
        for f in flows
    ]
    show_table(FLOW_COLUMNS, rows, keep=("ID", "NAME"), empty="No flows.")
    if page["total"] > offset + len(flows):
        say(
            f"[dim]{len(flows)} of {page['total']} shown; "
            f"--offset {offset + len(flows)} for more[/dim]"
        )


@flows_app.command("show")
def show(
    flow: FlowName,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a flow and its steps."""
    with connect(api_url, api_key) as api:
        found = resolve_flow(api, flow)
    if as_json:
        print_json(found)
        return
    show_flow(found)


@flows_app.command("delete")
def delete(
    flow: FlowName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete a flow and its finished runs (refused while a run is open)."""
    with connect(api_url, api_key) as api:
        found = resolve_flow(api, flow)
        if not yes:
            typer.confirm(f"Delete flow {found['name']} ({found['id']}) and its runs?", abort=True)
        api.flows.delete(found["id"])
    if as_json:
        print_json({"id": found["id"], "deleted": True})
        return
    say(f"Deleted flow [bold]{found['id']}[/bold] ({found['name']})")


@flows_app.command("run")
def run(
    flow: FlowName,
    input_value: Annotated[
        Any,
        typer.Option(
            "--input",
            parser=parse_json,
            metavar="JSON",
            help="The run's input (any JSON, or @FILE); checked against the flow's input_schema.",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Start at most one run with this key (again: that run is answered)."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Wait for the run to end: exit 4 if it failed or was cancelled."
        ),
    ] = False,
    timeout: WaitTimeout = 600,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a run of a flow; with --wait, show it when it ends (exit 5 if still open after
    --timeout)."""
    body: dict[str, Any] = {"input": input_value}
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    with connect(api_url, api_key) as api:
        found = resolve_flow(api, flow)
        started = api.flows.run(found["id"], body).wire()
        if wait:
            if not as_json:
                say(f"Started run [bold]{started['id']}[/bold] of {found['name']}; waiting...")
            finish_wait(api, wait_for_run(api, started["id"], timeout), timeout, as_json)
            return
    if as_json:
        print_json(started)
        return
    say(
        f"Started run [bold]{started['id']}[/bold] of flow {found['name']} "
        f"({status_markup(started['status'])}); `cueflow runs show {started['id']}` follows it"
    )
