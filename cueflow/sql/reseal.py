"""Re-encrypt every stored secret with the newest key of ``CUEFLOW_SECRET_KEY`` (``cueflow db
rotate-secret-key``): each value is read (opened with whichever key of the list sealed it, or
as plaintext if it was stored before a key was set) and written back (sealed with the first
key). Rows are taken in batches by id, one transaction each, so the server can keep running;
a batch's rows are locked while it is read and written (SQLite transactions are serial), so a
secret rotated or a cue edited meanwhile is never overwritten with the value read before."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select, update

from cueflow.sql.store import SqlStore
from cueflow.sql.tables import cues, users

BATCH_SIZE = 500

_USER_SECRETS = ("webhook_secret", "alert_webhook_secret", "previous_webhook_secret")


@dataclass(frozen=True)
class Resealed:
    """How many rows a rotation wrote."""

    users: int
    cues: int


async def _reseal_table(
    store: SqlStore, table: Table, columns: tuple[str, ...], batch_size: int
) -> int:
    written = 0
    after = ""
    while True:
        async with store.tx() as tx:
            stmt = (
                select(table.c.id, *(table.c[name] for name in columns))
                .where(table.c.id > after)
                .order_by(table.c.id)
                .limit(batch_size)
                .with_for_update()  # a rotation or an edit meanwhile waits, and is not undone
            )
            rows = (await tx.conn.execute(stmt)).all()
            if not rows:
                return written
            changed: list[dict[str, Any]] = [
                {"row_id": row.id, **{f"new_{name}": getattr(row, name) for name in columns}}
                for row in rows
                if any(getattr(row, name) for name in columns)
            ]
            if changed:
                write = (
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values(
                        {
                            name: bindparam(f"new_{name}", type_=table.c[name].type)
                            for name in columns
                        }
                    )
                )
                await tx.conn.execute(write, changed)
            written += len(changed)
            after = rows[-1].id


async def reseal_secrets(store: SqlStore, batch_size: int = BATCH_SIZE) -> Resealed:
    """Write every user's signing secrets and every cue's callback headers back, sealed with
    the store's newest key."""
    return Resealed(
        users=await _reseal_table(store, users, _USER_SECRETS, batch_size),
        cues=await _reseal_table(store, cues, ("callback_headers",), batch_size),
    )
