"""``cueflow cues update``: change a cue's name, description or run controls (a ``PATCH``;
what is not given stays as it is). Registered on :data:`cueflow.commands.cues.cues_app` when
this module is imported (:func:`cueflow.cli._register_commands` does)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cueflow.commands import cue_controls as controls
from cueflow.commands.cues import CueId, cues_app, show_cue
from cueflow.commands.output import print_json, say
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect


@cues_app.command("update")
def update(
    cue_id: CueId,
    name: Annotated[str | None, typer.Option(help="A new unique name.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    overlap_policy: controls.OverlapOption = None,
    priority: controls.PriorityOption = None,
    concurrency: controls.ConcurrencyOption = None,
    no_concurrency: Annotated[
        bool, typer.Option("--no-concurrency", help="Remove the concurrency limit.")
    ] = False,
    rate_limit: controls.RateLimitOption = None,
    no_rate_limit: Annotated[
        bool, typer.Option("--no-rate-limit", help="Remove the rate limit.")
    ] = False,
    required_payload_key: controls.RequiredKeysOption = None,
    no_required_payload_keys: Annotated[
        bool,
        typer.Option("--no-required-payload-keys", help="Require no payload keys any more."),
    ] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a cue: only the options given change (--required-payload-key replaces the list;
    the --no-... flags remove a limit). Unfinished runs take the new priority and limits."""
    body: dict[str, Any] = controls.controls_body(
        overlap_policy, priority, concurrency, rate_limit, required_payload_key
    )
    controls.clearing_body(body, no_concurrency, no_rate_limit, no_required_payload_keys)
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if not body:
        raise typer.BadParameter("give at least one option to change", param_hint="options")
    with connect(api_url, api_key) as api:
        cue = api.cues.update(cue_id, body).wire()
    if as_json:
        print_json(cue)
        return
    say(f"[green]Updated cue[/green] [bold]{cue['id']}[/bold]")
    show_cue(cue)
