"""Echo messages: request bodies kept a few minutes for ``cueflow quickstart``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
)

import cueflow.sql.rows as rows
from cueflow.records import EchoMessage
from cueflow.sql.base import TxBase
from cueflow.sql.tables import (
    echo_messages,
)


class EchoQueries(TxBase):
    """Echo messages."""

    async def put_echo(self, values: dict[str, Any]) -> None:
        """Store or replace an echo message."""
        stmt = self.connector.insert(echo_messages).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["token"],
            set_={k: getattr(stmt.excluded, k) for k in values if k != "token"},
        )
        await self.conn.execute(stmt)

    async def get_echo(self, token: str, now: datetime) -> EchoMessage | None:
        """A live echo message."""
        stmt = select(echo_messages).where(
            echo_messages.c.token == token, echo_messages.c.expires_at >= now
        )
        return await self._record(rows.echo_message, stmt)

    async def forget_echoes(self, now: datetime) -> None:
        """Drop expired echo messages."""
        await self.conn.execute(echo_messages.delete().where(echo_messages.c.expires_at < now))
