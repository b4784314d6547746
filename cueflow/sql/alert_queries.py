"""Alerts: the alert log and the check that keeps an alert from repeating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
)

import cueflow.sql.rows as rows
from cueflow.records import Alert
from cueflow.sql.base import TxBase
from cueflow.sql.tables import (
    alerts,
)


class AlertQueries(TxBase):
    """The alert log."""

    async def insert_alert(self, values: dict[str, Any]) -> None:
        """Insert an alert."""
        await self.conn.execute(alerts.insert().values(**values))

    async def list_alerts(
        self,
        user_id: str,
        alert_type: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Alert], int]:
        """A page of the user's alerts, newest first."""
        stmt = select(alerts).where(alerts.c.user_id == user_id)
        if alert_type is not None:
            stmt = stmt.where(alerts.c.alert_type == alert_type)
        if since is not None:
            stmt = stmt.where(alerts.c.created_at >= since)
        total = await self._count(stmt)
        page = stmt.order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
        return await self._records(rows.alert, page.limit(limit).offset(offset)), total

    async def alert_exists(
        self,
        user_id: str,
        alert_type: str,
        execution_id: str | None,
        cue_id: str | None,
        since: datetime,
    ) -> bool:
        """Whether a matching alert was created after ``since``."""
        stmt = select(alerts.c.id).where(
            alerts.c.user_id == user_id,
            alerts.c.alert_type == alert_type,
            alerts.c.created_at > since,
        )
        if execution_id is not None:
            stmt = stmt.where(alerts.c.execution_id == execution_id)
        elif cue_id is not None:
            stmt = stmt.where(alerts.c.cue_id == cue_id)
        return await self._one(stmt.limit(1)) is not None
