"""``cueflow workers``: the workers registered with a server (``POST /v1/worker/heartbeat``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cueflow.commands.output import print_json, say, show_table, when
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect

workers_app = typer.Typer(help="See and forget registered workers.", no_args_is_help=True)

WORKER_COLUMNS = ("ID", "STATUS", "LAST HEARTBEAT (UTC)", "AGO", "HANDLERS", "SINCE (UTC)")


@workers_app.command("list")
def list_workers(
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False
) -> None:
    """List your workers, latest heartbeat first (active < 180 s < stale < 900 s < dead)."""
    with connect(api_url, api_key) as api:
        answer = api.workers.list().wire()
    if as_json:
        print_json(answer)
        return
    rows = [
        (
            w["worker_id"],
            w.get("heartbeat_status"),
            when(w.get("last_heartbeat")),
            f"{w.get('seconds_since_heartbeat')}s",
            ", ".join(w.get("handlers") or []),
            when(w.get("registered_since")),
        )
        for w in answer["workers"]
    ]
    show_table(WORKER_COLUMNS, rows, empty="No workers have registered.")


@workers_app.command("delete")
def delete(
    worker_id: Annotated[str, typer.Argument(help="The worker's id.", show_default=False)],
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Forget a worker (executions it holds are not touched)."""
    with connect(api_url, api_key) as api:
        api.workers.delete(worker_id)
    if as_json:
        print_json({"worker_id": worker_id, "deleted": True})
        return
    say(f"Deleted worker [bold]{worker_id}[/bold]")
