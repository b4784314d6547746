"""``cueflow accounts``: create accounts directly in the configured database, so that a server
exposed to others can run with ``ALLOW_REGISTER=false`` (like ``cueflow db``, it needs the
store URL, not a running server)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cueflow.commands.db import DatabaseUrl, JsonFlag, safe_url
from cueflow.commands.output import EXIT_USAGE, fail, print_json, say, warn

accounts_app = typer.Typer(help="Accounts in the configured database.", no_args_is_help=True)


@accounts_app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The account's email address.")],
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an account and print its API key, once: only its hash is stored. Works whatever
    ALLOW_REGISTER says (migrates the database first, as the server does)."""
    from cueflow.config import Settings
    from cueflow.engine import Engine
    from cueflow.errors import CueflowError, PluginError

    settings = Settings() if database_url is None else Settings(database_url=database_url)

    async def run() -> dict[str, str]:
        engine = Engine(settings)
        await engine.open()
        try:
            return await engine.create_account(email)
        finally:
            await engine.close()

    try:
        created = asyncio.run(run())
    except CueflowError as exc:
        fail(f"cannot create {email!r}: {exc.message} ({exc.code})")
    except PluginError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        fail(f"cannot create the account in {safe_url(settings.database_url)}: {exc!r}")
    if as_json:
        print_json(created)
        return
    say(f"Created account [bold]{created['email']}[/bold] in {safe_url(settings.database_url)}")
    typer.echo(created["api_key"])
    warn("The API key is shown only this once: store it now (only its hash is kept).")
