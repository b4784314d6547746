"""The ``cueflow`` command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cueflow.config import Settings

app = typer.Typer(
    help="cueflow: scheduling and delivery for jobs and AI agents.", no_args_is_help=True
)


@app.callback()
def main() -> None:
    """cueflow command line."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address [env HOST, default 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [env PORT, default 8000]")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Store URL [env DATABASE_URL, default sqlite:///cueflow.db]"),
    ] = None,
    worker_claim_timeout_seconds: Annotated[
        int | None, typer.Option(help="Claim lease [env WORKER_CLAIM_TIMEOUT_SECONDS, 900]")
    ] = None,
    worker_heartbeat_timeout_seconds: Annotated[
        int | None,
        typer.Option(help="Worker staleness [env WORKER_HEARTBEAT_TIMEOUT_SECONDS, 180]"),
    ] = None,
    allow_private_webhooks: Annotated[
        bool | None,
        typer.Option(
            "--allow-private-webhooks/--no-allow-private-webhooks",
            help="Let webhooks reach loopback/private networks, for local development "
            "[env CUEFLOW_ALLOW_PRIVATE_WEBHOOKS, default off]",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level")] = "info",
) -> None:
    """Run the REST API server with its scheduler (migrates the database first)."""
    import uvicorn

    from cueflow.api import create_app
    from cueflow.engine import Engine
    from cueflow.errors import PluginError

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "database_url": database_url,
            "worker_claim_timeout_seconds": worker_claim_timeout_seconds,
            "worker_heartbeat_timeout_seconds": worker_heartbeat_timeout_seconds,
            "allow_private_webhooks": allow_private_webhooks,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    try:
        engine = Engine(settings)
    except PluginError as exc:
        typer.echo(f"cueflow: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(
        create_app(engine),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
    )
