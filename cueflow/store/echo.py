"""Echo messages: request bodies kept a few minutes (the CLI's ``quickstart`` target)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cueflow.records import EchoMessage


class EchoStore(Protocol):
    """Echo messages: request bodies kept a few minutes (the CLI's ``quickstart`` target)."""

    async def put_echo(self, values: dict[str, Any]) -> None:
        """Store (or replace) the echo message of ``values["token"]``."""

    async def get_echo(self, token: str, now: datetime) -> EchoMessage | None:
        """The echo message stored under ``token`` unless it expired before ``now``."""

    async def forget_echoes(self, now: datetime) -> None:
        """Drop echo messages that expired before ``now``."""
