"""The ``cueflow`` command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cueflow.config import Settings
from cueflow.extras import MissingExtra, missing_extra
from cueflow.version import __version__

app = typer.Typer(
    help="cueflow: scheduling and delivery for jobs and AI agents.",
    no_args_is_help=True,
    # plain help: rich's option table cuts long words (the environment variable names in the
    # options' help) to fit narrow terminals, and takes [...] for markup
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    """``--version``: print the version and stop."""
    if value:
        typer.echo(f"cueflow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_print_version, is_eager=True, help="Show the version"
        ),
    ] = False,
) -> None:
    """cueflow command line."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (env HOST, default 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (env PORT, default 8000)")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Store URL (env DATABASE_URL, default sqlite:///cueflow.db)"),
    ] = None,
    worker_claim_timeout_seconds: Annotated[
        int | None, typer.Option(help="Claim lease (env WORKER_CLAIM_TIMEOUT_SECONDS, 900)")
    ] = None,
    worker_heartbeat_timeout_seconds: Annotated[
        int | None,
        typer.Option(help="Worker staleness (env WORKER_HEARTBEAT_TIMEOUT_SECONDS, 180)"),
    ] = None,
    allow_private_webhooks: Annotated[
        bool | None,
        typer.Option(
            "--allow-private-webhooks/--no-allow-private-webhooks",
            help="Let webhooks reach loopback/private networks, for local development "
            "(env CUEFLOW_ALLOW_PRIVATE_WEBHOOKS, default off)",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies (addresses or networks, comma-separated, or *) whose "
            "X-Forwarded-For is believed (env CUEFLOW_FORWARDED_ALLOW_IPS, default none)"
        ),
    ] = None,
    graceful_timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="On SIGTERM, seconds deliveries and handlers in flight get to finish before "
            "their executions go back to the queue (env CUEFLOW_GRACEFUL_TIMEOUT_SECONDS, "
            "default 20)",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes on the one port, each a full node (its own scheduler, "
            "dispatcher and database pool); PostgreSQL only (env CUEFLOW_WORKERS, default 1)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level")] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(help="Log lines: text (readable) or json (env CUEFLOW_LOG_FORMAT, text)"),
    ] = None,
    with_mcp: Annotated[
        bool,
        typer.Option(
            "--mcp",
            help="Also serve the agent tools to MCP clients at /mcp (streamable HTTP, API key "
            "as bearer token; needs the mcp extra)",
        ),
    ] = False,
) -> None:
    """Run the REST API server with its scheduler (migrates the database first)."""
    try:
        import cueflow.api.serving  # noqa: F401 - the server extra is there
    except (MissingExtra, ModuleNotFoundError) as exc:
        error = exc if isinstance(exc, MissingExtra) else missing_extra("cueflow serve", exc)
        typer.echo(f"cueflow serve: {error}", err=True)
        raise typer.Exit(2) from None

    if log_format not in (None, "text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "database_url": database_url,
            "worker_claim_timeout_seconds": worker_claim_timeout_seconds,
            "worker_heartbeat_timeout_seconds": worker_heartbeat_timeout_seconds,
            "allow_private_webhooks": allow_private_webhooks,
            "forwarded_allow_ips": forwarded_allow_ips,
            "graceful_timeout_seconds": graceful_timeout,
            "log_format": log_format,
            "serve_workers": workers,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    node = _Node(overrides, log_level, with_mcp, several=settings.serve_workers > 1)
    if not node.several:
        try:
            node.serve()
        except _StartupFailed as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        return
    raise typer.Exit(_supervise(settings, node, log_level))


class _StartupFailed(Exception):
    """A node cannot start (a plugin is missing, ``--mcp`` without its extra): one line."""


class _Node:
    """One ``cueflow serve`` node: the settings' engine and its app, served by uvicorn.
    Picklable, so ``--workers`` children get it (each builds its own engine)."""

    def __init__(
        self, overrides: dict[str, Any], log_level: str, with_mcp: bool, *, several: bool
    ) -> None:
        self.overrides = overrides
        self.log_level = log_level
        self.with_mcp = with_mcp
        self.several = several

    def serve(self, sockets: list[Any] | None = None) -> None:
        """Build the engine and the app and serve them until a signal stops the process."""
        from cueflow import logs
        from cueflow.api import create_app
        from cueflow.api.serving import serve_forever
        from cueflow.engine import Engine
        from cueflow.errors import PluginError

        settings = Settings(**self.overrides)
        try:
            engine = Engine(settings)
        except PluginError as exc:
            raise _StartupFailed(f"cueflow: {exc}") from exc
        logs.configure(settings.log_format, self.log_level, pid=self.several)
        app = create_app(engine)
        if self.with_mcp:
            try:
                from cueflow.agents.mcp_http import mount_mcp
            except ImportError as exc:
                message = f"--mcp needs the mcp extra: pip install 'cueflow[mcp]' ({exc})"
                raise _StartupFailed(message) from exc
            mount_mcp(app, engine, host=settings.host)
        serve_forever(app, settings, self.log_level, drain=engine.drain, sockets=sockets)

    def __call__(self, sockets: list[Any]) -> None:
        """Serve as a ``--workers`` child: a node that cannot start exits with uvicorn's
        start-up failure code, so the supervisor stops instead of starting it again."""
        from cueflow.api.supervisor import STARTUP_FAILURE

        try:
            self.serve(sockets)
        except _StartupFailed as exc:
            typer.echo(str(exc), err=True)
            raise SystemExit(STARTUP_FAILURE) from None


SEVERAL_NEED_POSTGRES = (
    "--workers {n} needs PostgreSQL: SQLite lets one process write at a time, so more "
    "processes would only queue on its file lock, and the long-poll wake-ups and the write "
    "queue live inside one process; use --workers 1 (or a postgresql:// database)"
)


def _supervise(settings: Settings, node: _Node, log_level: str) -> int:
    """``--workers N``: bind the port once, run N children on it; the exit code."""
    from cueflow import logs
    from cueflow.api.supervisor import KILL_MARGIN_SECONDS, Supervisor, bind

    n = settings.serve_workers
    scheme = settings.database_url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("postgresql", "postgres"):
        typer.echo(f"cueflow serve: {SEVERAL_NEED_POSTGRES.format(n=n)}", err=True)
        return 2
    logs.configure(settings.log_format, log_level, pid=True)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        typer.echo(
            f"cueflow serve: cannot listen on {settings.host}:{settings.port}: {exc}", err=True
        )
        return 1
    stop_timeout = (
        max(settings.graceful_timeout_seconds, settings.drain_accept_seconds)
        + settings.graceful_timeout_seconds
        + KILL_MARGIN_SECONDS
    )
    return Supervisor(node, sock, n, stop_timeout=stop_timeout).run()


@app.command()
def mcp(
    url: Annotated[
        str | None,
        typer.Option(help="A cueflow or CueAPI server to act on (key from CUEFLOW_API_KEY)"),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Or an embedded engine on this store URL")
    ] = None,
    email: Annotated[
        str | None,
        typer.Option(help="Embedded engine: the account to act for, if CUEFLOW_API_KEY is unset"),
    ] = None,
    worker_id: Annotated[str | None, typer.Option(help="Worker id (generated by default)")] = None,
    task: Annotated[str | None, typer.Option(help="Only executions of this payload.task")] = None,
    max_claims: Annotated[
        int, typer.Option(min=1, help="Executions a worker (an API key over HTTP) may hold at once")
    ] = 1,
    manage: Annotated[bool, typer.Option("--manage", help="Add the cue management tools")] = False,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="With --manage: add the delete tool")
    ] = False,
    tool_names: Annotated[
        str,
        typer.Option(
            help="Tool names: cueflow (poll_executions ...), cueapi (those of CueAPI's MCP "
            "server: cueapi_claim_execution ...) or both"
        ),
    ] = "cueflow",
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio; callers "
            "authenticate with their API key as a bearer token",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: port")] = 8765,
) -> None:
    """Serve the agent tools to MCP clients over stdio, or streamable HTTP with --http (needs
    the mcp extra)."""
    import asyncio
    import os

    from cueflow.errors import CueflowError

    if tool_names not in ("cueflow", "cueapi", "both"):
        raise typer.BadParameter("must be cueflow, cueapi or both", param_hint="--tool-names")
    try:
        from cueflow.agents.mcp_http import serve_http
        from cueflow.agents.mcp_server import serve_stdio
    except ImportError as exc:
        typer.echo(f"cueflow mcp needs the mcp extra: pip install 'cueflow[mcp]' ({exc})", err=True)
        raise typer.Exit(2) from exc
    options: dict[str, Any] = {
        "url": url,
        "database_url": database_url,
        "worker_id": worker_id,
        "task": task,
        "max_claims": max_claims,
        "include_management": manage,
        "allow_destructive": allow_destructive,
        "tool_names": tool_names,
    }
    if http:
        if email is not None:
            raise typer.BadParameter(
                "over HTTP each caller's API key picks the account", param_hint="--email"
            )
        typer.echo(f"cueflow mcp: streamable HTTP at http://{host}:{port}/mcp", err=True)
        serving = serve_http(host=host, port=port, **options)
    else:
        api_key = os.environ.get("CUEFLOW_API_KEY")
        serving = serve_stdio(api_key=api_key, email=email, **options)
    try:
        asyncio.run(serving)
    except (ValueError, CueflowError) as exc:
        typer.echo(f"cueflow mcp: {exc}", err=True)
        raise typer.Exit(2) from exc


def _register_commands() -> None:
    """Add the command groups of :mod:`cueflow.commands`."""
    from cueflow.commands import cue_update  # noqa: F401  (adds ``cues update``)
    from cueflow.commands.accounts import accounts_app
    from cueflow.commands.backfill import backfill
    from cueflow.commands.cues import cues_app
    from cueflow.commands.db import db_app
    from cueflow.commands.executions import executions_app
    from cueflow.commands.flows import flows_app
    from cueflow.commands.keys import keys_app
    from cueflow.commands.runs import runs_app
    from cueflow.commands.worker import worker
    from cueflow.commands.workers import workers_app

    cues_app.command("backfill")(backfill)
    app.add_typer(cues_app, name="cues")
    app.add_typer(executions_app, name="executions")
    app.add_typer(workers_app, name="workers")
    app.add_typer(flows_app, name="flows")
    app.add_typer(runs_app, name="runs")
    app.command()(worker)
    app.add_typer(db_app, name="db")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(keys_app, name="keys")


_register_commands()
