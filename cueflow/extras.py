"""The optional parts of the install, and the one-line message a missing one gives.

The plain ``pip install cueflow`` is the engine an application embeds on SQLite. The rest are
extras (``pyproject.toml``): ``cli`` the ``cueflow`` command, ``server`` ``cueflow serve`` (the
REST API and dashboard, with the command line), ``postgres`` the PostgreSQL store, ``agents``
langchain-core tools, ``mcp`` the MCP server, ``otel`` tracing, ``all`` every one of them.
Code behind an extra imports its dependencies on use and turns a
:class:`ModuleNotFoundError` for one of them into :class:`MissingExtra`, naming the extra.
"""

from __future__ import annotations

EXTRA_OF_MODULE: dict[str, str] = {
    "typer": "cli",
    "click": "cli",
    "rich": "cli",
    "yaml": "cli",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "asyncpg": "postgres",
    "langchain_core": "agents",
    "mcp": "mcp",
    "opentelemetry": "otel",
}
"""Top-level module of a dependency → the extra that installs it."""


class MissingExtra(ImportError):
    """A part of cueflow was used whose extra is not installed; the message names the extra
    and the command that installs it."""


def extra_for(exc: ModuleNotFoundError) -> str | None:
    """The extra that installs the module ``exc`` did not find, or None when no extra does
    (a missing module of the core is a broken install, not a missing extra)."""
    name = (exc.name or "").split(".")[0]
    return EXTRA_OF_MODULE.get(name)


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'cueflow[{extra}]'"


def missing_extra(what: str, exc: ModuleNotFoundError, extra: str | None = None) -> MissingExtra:
    """The error for ``what`` (``"cueflow serve"``, ``"cueflow.api"``) needing the extra whose
    module ``exc`` did not find: ``extra`` when given, else the one that installs that module."""
    wanted = extra or extra_for(exc) or "all"
    return MissingExtra(
        f"{what} needs the {wanted} extra ({exc.name} is not installed): {install_hint(wanted)}"
    )
