"""What every command that talks to a server shares: the ``--api-url``, ``--api-key`` and
``--json`` options, and :func:`connect`, which turns refused requests and unreachable servers
into a red message and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from cueflow.commands.client import (
    DEFAULT_API_URL,
    ApiClient,
    ApiError,
    BadServerUrl,
    Unreachable,
)

__all__ = ["DEFAULT_API_URL", "ApiKey", "ApiUrl", "JsonFlag", "connect"]
from cueflow.commands.output import EXIT_UNREACHABLE, EXIT_USAGE, fail

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url", envvar="CUEFLOW_API_URL", help="Server to talk to.", show_envvar=True
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="CUEFLOW_API_KEY",
        help="API key (cue_sk_...) of the account to act as.",
        show_default=False,
        show_envvar=True,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]


@contextmanager
def connect(api_url: str, api_key: str | None) -> Iterator[ApiClient]:
    """An :class:`ApiClient` for the command's options. An :class:`ApiError` raised inside
    exits with code 1 and the server's message, an unreachable server with code 3; a missing
    key or an unusable URL is a usage error (code 2)."""
    if not api_key:
        fail("no API key: pass --api-key or set CUEFLOW_API_KEY", EXIT_USAGE)
    try:
        client = ApiClient(api_url, api_key)
    except BadServerUrl as exc:
        fail(f"--api-url: {exc}", EXIT_USAGE)
    try:
        yield client
    except Unreachable as exc:
        fail(f"{exc} (is `cueflow serve` running there?)", EXIT_UNREACHABLE)
    except ApiError as exc:
        fail(f"{exc.message} ({exc.status} {exc.code})")
    finally:
        client.close()
