"""Import smoke test of one install of cueflow: ``python extras_smoke.py EXTRA``.

Run by ``.ci/extras.sh`` in a fresh venv holding ``cueflow[EXTRA]`` (``core``: the plain
install) from the built wheel, outside the checkout so the installed package is the one tested.
Each check is what a user of that install does first; the core's also checks that the server's,
the command line's and PostgreSQL's dependencies are absent and that using them names the extra.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def absent(*modules: str) -> None:
    """None of ``modules`` is installed."""
    found = [m for m in modules if importlib.util.find_spec(m) is not None]
    assert not found, f"installed but should not be: {found}"


def command(*args: str, code: int = 0) -> str:
    """Run ``cueflow ARGS``; check its exit code; answer its stdout and stderr."""
    done = subprocess.run(
        [str(BIN / "cueflow"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == code, f"cueflow {' '.join(args)} exited {done.returncode}: {output}"
    assert "Traceback" not in output, output
    return output


def embedded_handler_runs() -> None:
    """The README's embedding: an engine on in-memory SQLite runs an in-process handler."""
    import cueflow

    engine = cueflow.open_engine("sqlite://")
    seen: list[str] = []

    @engine.handler("greet")
    def greet(payload: dict[str, str]) -> str:
        seen.append(payload["name"])
        return "greeted"

    async def run() -> None:
        async with engine:
            me = await engine.account("me@example.com")
            cue, _ = await engine.create_cue(
                me,
                {
                    "name": "greeting",
                    "transport": "inprocess",
                    "payload": {"task": "greet", "name": "world"},
                    "schedule": {"type": "interval", "interval_seconds": 3600},
                },
            )
            await engine.fire_cue(me, cue.id)
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.05)

    asyncio.run(run())
    assert seen == ["world"], seen


def core() -> None:
    """The plain install: the embedded engine; the rest says which extra it needs."""
    absent("fastapi", "uvicorn", "typer", "rich", "asyncpg", "yaml", "langchain_core", "mcp")
    embedded_handler_runs()
    import cueflow
    from cueflow.errors import PluginError
    from cueflow.extras import MissingExtra

    try:
        import cueflow.api
    except MissingExtra as exc:
        assert "pip install 'cueflow[server]'" in str(exc), exc
    else:
        raise AssertionError("cueflow.api imported without the server extra")
    try:
        cueflow.open_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    except PluginError as exc:
        assert "pip install 'cueflow[postgres]'" in str(exc), exc
    else:
        raise AssertionError("a postgresql:// engine opened without the postgres extra")
    assert command("--version").strip() == f"cueflow {cueflow.__version__}"
    out = command("serve", code=2)
    assert out.strip() == "cueflow serve needs the server extra: pip install 'cueflow[server]'"
    out = command("cues", "list", code=2)
    assert out.strip() == "cueflow cues needs the cli extra: pip install 'cueflow[cli]'"


def cli() -> None:
    """The command line without the server: its commands, and ``serve`` naming the extra."""
    absent("fastapi", "uvicorn", "asyncpg")
    assert "flows" in command("--help")
    command("worker", "--help")
    out = command("serve", code=2)
    assert "pip install 'cueflow[server]'" in out and len(out.strip().splitlines()) == 1, out


def server() -> None:
    """``cueflow serve`` and the REST API."""
    absent("asyncpg")
    assert "--database-url" in command("serve", "--help")
    import cueflow
    from cueflow.api import create_app

    app = create_app(cueflow.open_engine("sqlite://"))
    assert "/v1/cues" in app.openapi()["paths"]
    embedded_handler_runs()


def postgres() -> None:
    """An engine on PostgreSQL starts (migrates) and closes, in a database of its own."""
    import asyncpg

    import cueflow

    admin = os.environ.get("CUEFLOW_EXTRAS_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"cueflow_extras_{os.getpid()}"

    async def run() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f"CREATE DATABASE {name}")
        try:
            engine = cueflow.open_engine(admin.rsplit("/", 1)[0] + "/" + name)
            async with engine:
                me = await engine.account("me@example.com")
                _cues, total = await engine.list_cues(me)
                assert total == 0
        finally:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await conn.close()

    asyncio.run(run())


def agents() -> None:
    """The langchain-core toolkit builds its tools."""
    from cueflow.agents import CueflowToolkit, run_agent_worker

    assert callable(run_agent_worker)
    toolkit = CueflowToolkit.for_url("http://127.0.0.1:9", "cue_sk_smoke")
    names = {tool.name for tool in toolkit.get_tools()}
    toolkit.close()
    assert "report_outcome" in names, names


def mcp() -> None:
    """The MCP server builds, and ``cueflow mcp`` is there."""
    from cueflow.agents.mcp_server import build_mcp_server  # noqa: F401

    assert "--http" in command("mcp", "--help")


def otel() -> None:
    """Tracing is live when the OpenTelemetry SDK is installed."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    import cueflow.tracing as tracing

    trace.set_tracer_provider(TracerProvider())
    tracing.refresh()
    assert tracing.active()
    embedded_handler_runs()


CHECKS = {f.__name__: f for f in (core, cli, server, postgres, agents, mcp, otel)}

if __name__ == "__main__":
    CHECKS[sys.argv[1]]()
    print(f"extras: cueflow[{sys.argv[1]}] ok")
