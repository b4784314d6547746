"""``cueflow keys``: the account's scoped API keys (``/v1/auth/keys``): create one with a scope
(the secret is printed once), list them, revoke one. Creating and revoking need a full key."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from cueflow.commands.output import print_json, say, show_table, when
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl, JsonFlag, connect

keys_app = typer.Typer(help="Create, list and revoke scoped API keys.", no_args_is_help=True)

KEY_COLUMNS = ("ID", "NAME", "SCOPE", "PREFIX", "CREATED (UTC)", "LAST USED (UTC)")


class ScopeChoice(StrEnum):
    """The scopes a key may have (see ``docs/operations.md``, "Scoped keys")."""

    full = "full"
    worker = "worker"
    read = "read"


@keys_app.command("create")
def create(
    scope: Annotated[
        ScopeChoice,
        typer.Option(
            "--scope",
            help="full: everything; worker: poll, claim, heartbeat, outcome, release, worker "
            "registry; read: read-only.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="A label, such as the host that uses it.", show_default=False),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key; its secret is printed this once (only its hash is stored)."""
    body = {"scope": scope.value} | ({"name": name} if name is not None else {})
    with connect(api_url, api_key) as api:
        created = api.keys.create(body).wire()
    if as_json:
        print_json(created)
        return
    label = f" ({escape(created['name'])})" if created.get("name") else ""
    say(f"Created [bold]{created['scope']}[/bold] key [bold]{created['id']}[/bold]{label}")
    say("Its secret is shown only now; keep it somewhere safe:")
    typer.echo(created["api_key"])


@keys_app.command("list")
def list_keys(
    api_url: ApiUrl = DEFAULT_API_URL, api_key: ApiKey = None, as_json: JsonFlag = False
) -> None:
    """List the account's keys (never their secrets), oldest first, after the account key."""
    with connect(api_url, api_key) as api:
        answer = api.keys.list().wire()
    if as_json:
        print_json(answer)
        return
    account = answer["account_key"]
    rows: list[tuple[Any, ...]] = [
        ("(account key)", None, account["scope"], account["prefix"], None, None)
    ]
    rows += [
        (
            k["id"],
            k.get("name"),
            k["scope"],
            k["prefix"],
            when(k.get("created_at")),
            when(k.get("last_used_at")) or "never",
        )
        for k in answer["keys"]
    ]
    show_table(KEY_COLUMNS, rows, empty="No keys.")


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).", show_default=False)],
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: it answers 401 key_revoked from now on."""
    with connect(api_url, api_key) as api:
        api.keys.revoke(key_id)
    if as_json:
        print_json({"id": key_id, "revoked": True})
        return
    say(f"Revoked key [bold]{escape(key_id)}[/bold]")
