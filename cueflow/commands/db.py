"""``cueflow db``: bring a store's schema up to date, say which version it is at, or delete
old history (``prune``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cueflow.commands.output import EXIT_USAGE, fail, print_json, say

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# SQLAlchemy and Alembic are imported inside the commands: the rest of the CLI starts faster

db_app = typer.Typer(help="Database schema migrations and history retention.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="Store URL [env DATABASE_URL, default sqlite:///cueflow.db]", show_default=False
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _settings_url(database_url: str | None) -> str:
    from cueflow.config import Settings

    return database_url or Settings().database_url


def safe_url(url: str) -> str:
    """``url`` with its password masked, fit to print."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def head_revision() -> str | None:
    """The newest migration cueflow ships."""
    from alembic.script import ScriptDirectory

    from cueflow.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str) -> str | None:
    """The migration a SQLite or PostgreSQL database is at (``None``: no cueflow schema)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not Path(path).exists():
            return None  # do not create the file just to look at it
        engine = create_engine(parsed)
        try:
            with engine.connect() as conn:
                return read(conn)
        finally:
            engine.dispose()
    if backend == "postgresql":

        async def pg() -> str | None:
            engine = create_async_engine(parsed.set(drivername="postgresql+asyncpg"))
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(read)
            finally:
                await engine.dispose()

        return asyncio.run(pg())
    fail(f"db current reads sqlite and postgresql URLs, not {backend!r}", EXIT_USAGE)


def _report(url: str, as_json: bool, verb: str) -> None:
    current, head = current_revision(url), head_revision()
    if as_json:
        print_json(
            {
                "database_url": safe_url(url),
                "revision": current,
                "head": head,
                "up_to_date": current == head,
            }
        )
        return
    state = "[green]up to date[/green]" if current == head else f"[yellow]head is {head}[/yellow]"
    say(f"{verb} {safe_url(url)}: revision [bold]{current or 'none'}[/bold] ({state})")


@db_app.command("upgrade")
def upgrade(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Apply every pending migration (the server also does this when it starts)."""
    from cueflow.config import Settings
    from cueflow.engine import Engine
    from cueflow.errors import PluginError

    url = _settings_url(database_url)

    async def migrate() -> None:
        engine = Engine(Settings(database_url=url))
        await engine.open()  # the store's open migrates, under its own locking
        await engine.close()

    try:
        asyncio.run(migrate())
    except PluginError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        fail(f"cannot migrate {safe_url(url)}: {type(exc).__name__}: {exc}")
    _report(url, as_json, "Migrated")


@db_app.command("current")
def current(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Show the schema revision a database is at, and whether it is the newest."""
    url = _settings_url(database_url)
    try:
        _report(url, as_json, "Database")
    except typer.Exit:
        raise
    except Exception as exc:
        fail(f"cannot read {safe_url(url)}: {type(exc).__name__}: {exc}")


@db_app.command("prune")
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Delete history that ended longer ago than this: 30d, 12h, 90m."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go, per kind; delete nothing.")
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete executions, flow runs and alerts that ended long ago, in short batches (the
    server does this by itself when CUEFLOW_RETENTION_DAYS is set)."""
    from cueflow.config import Settings
    from cueflow.engine import Engine
    from cueflow.errors import PluginError
    from cueflow.retention import PruneReport, parse_age

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        fail(f"--older-than: {exc}", EXIT_USAGE)
    url = _settings_url(database_url)

    async def run() -> PruneReport:
        engine = Engine(Settings(database_url=url))
        await engine.open()
        try:
            return await engine.prune(age, dry_run=dry_run)
        finally:
            await engine.close()

    try:
        report = asyncio.run(run())
    except PluginError as exc:
        fail(str(exc), EXIT_USAGE)
    except Exception as exc:
        fail(f"cannot prune {safe_url(url)}: {type(exc).__name__}: {exc}")
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "older_than": older_than,
                "complete": report.complete,
                "seconds": round(report.seconds, 3),
                **({} if dry_run else {"deleted": report.counts}),
                **({"would_delete": report.counts} if dry_run else {}),
            }
        )
    else:
        verb = "Would delete" if dry_run else "Deleted"
        say(f"{verb} (ended more than {older_than} ago) in {report.seconds:.1f} s:")
        for kind, count in report.counts.items():
            say(f"  {kind:<18} {count}")
    if not report.complete:
        fail("another node is pruning now: stopped early; run it again later")


@db_app.command("rotate-secret-key")
def rotate_secret_key(database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """Re-encrypt every stored secret (webhook signing secrets, callback headers) with the
    first key of CUEFLOW_SECRET_KEY; afterwards the older keys can be dropped from the list.
    Values stored in plaintext before a key was set are encrypted too."""
    from cueflow.config import Settings
    from cueflow.engine import Engine
    from cueflow.errors import PluginError
    from cueflow.sql.reseal import Resealed, reseal_secrets
    from cueflow.sql.store import SqlStore

    settings = Settings() if database_url is None else Settings(database_url=database_url)
    url = settings.database_url
    if settings.secret_key is None or not settings.secret_key.get_secret_value().strip():
        fail("CUEFLOW_SECRET_KEY is not set: give the new key first, then the old ones", EXIT_USAGE)

    async def rotate() -> Resealed:
        engine = Engine(settings)
        await engine.open()
        try:
            store = engine.services.store
            if not isinstance(store, SqlStore):
                fail(f"the {store.name!r} store keeps no secrets cueflow encrypts", EXIT_USAGE)
            return await reseal_secrets(store)
        finally:
            await engine.close()

    try:
        done = asyncio.run(rotate())
    except PluginError as exc:
        fail(str(exc), EXIT_USAGE)
    except typer.Exit:
        raise
    except Exception as exc:
        fail(f"cannot re-encrypt the secrets of {safe_url(url)}: {type(exc).__name__}")
    if as_json:
        print_json({"database_url": safe_url(url), "accounts": done.users, "cues": done.cues})
        return
    say(
        f"Re-encrypted the secrets of {done.users} accounts and {done.cues} cues in "
        f"{safe_url(url)} with the first key of CUEFLOW_SECRET_KEY"
    )
