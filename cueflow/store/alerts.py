"""The alert log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cueflow.records import Alert


class AlertStore(Protocol):
    """The alert log."""

    async def insert_alert(self, values: dict[str, Any]) -> None:
        """Insert an alert."""

    async def list_alerts(
        self,
        user_id: str,
        alert_type: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Alert], int]:
        """A page of the user's alerts (of ``alert_type``, created at or after ``since``),
        newest first, and the total."""

    async def alert_exists(
        self,
        user_id: str,
        alert_type: str,
        execution_id: str | None,
        cue_id: str | None,
        since: datetime,
    ) -> bool:
        """Whether the user has an alert of ``alert_type`` created after ``since`` for
        ``execution_id`` (or, when that is ``None``, for ``cue_id``)."""
