"""What the commands print: rich tables and messages for people, ``--json`` for scripts,
errors in red on stderr, and the exit codes scripts can rely on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_API_ERROR = 1
"""The server refused the request (its error envelope's message is printed)."""
EXIT_USAGE = 2
"""Bad command line (typer's own code for usage errors)."""
EXIT_UNREACHABLE = 3
"""No answer from the server: refused connection, timeout, unknown host."""
EXIT_RUN_FAILED = 4
"""A flow run waited for (``--wait``) ended failed or cancelled."""
EXIT_STILL_RUNNING = 5
"""A flow run waited for was still open when the wait's bound passed."""


def stdout() -> Console:
    """A console on the current standard output (looked up per call, so redirections and
    test runners that swap ``sys.stdout`` are honoured)."""
    return Console(highlight=False)


def stderr() -> Console:
    """A console on the current standard error."""
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON, the way the server sent it (``--json``)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def say(message: str) -> None:
    """A confirmation for people (``message`` is rich markup), never wrapped: scripts may
    grep it."""
    stdout().print(message, soft_wrap=True)


def warn(message: str) -> None:
    """A warning in yellow on stderr (``message`` is plain text)."""
    stderr().print(f"[yellow]Warning:[/yellow] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = EXIT_API_ERROR) -> NoReturn:
    """Print ``message`` (plain text) in red on stderr and exit with ``code``."""
    stderr().print(f"[bold red]Error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(code)


def show_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    empty: str = "Nothing to show.",
    keep: Sequence[str] = ("ID", "CUE"),
) -> None:
    """Print ``rows`` as a table; ids (the ``keep`` columns) and times are never wrapped."""
    rows = list(rows)
    if not rows:
        say(f"[dim]{escape(empty)}[/dim]")
        return
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in columns:
        if column in keep or "(UTC)" in column:
            width = max(len(str(row[columns.index(column)])) for row in rows)
            table.add_column(column, no_wrap=True, min_width=max(width, len(column)))
        else:
            table.add_column(column, overflow="fold", min_width=min(len(column), 10))
    for row in rows:
        table.add_row(*(escape(text(value)) for value in row))
    stdout().print(table)


def show_fields(fields: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """Print ``fields`` as aligned ``name  value`` lines (one object's details)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in fields:
        table.add_row(escape(name), escape(text(value)))
    console = stdout()
    if title:
        console.print(f"[bold]{escape(title)}[/bold]")
    console.print(table)


def text(value: Any) -> str:
    """A cell's text: ``-`` for nothing, compact JSON for objects, short UTC times."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def when(value: str | None) -> str | None:
    """An ISO-8601 UTC timestamp as ``YYYY-MM-DD HH:MM:SS`` (``None`` stays ``None``)."""
    if not value:
        return None
    stamp = value.replace("T", " ")
    for suffix in ("Z", "+00:00"):
        stamp = stamp.removesuffix(suffix)
    return stamp.split(".")[0]
