"""One SQL implementation of :class:`cueflow.store.StoreTx`, shared by the SQL store plugins.

Statements are SQLAlchemy Core (the hot paths never build ORM objects). What differs between
databases — how a connection is driven, ``INSERT ... ON CONFLICT``, row locking with
``SKIP LOCKED``, cross-node notifications — comes from the plugin's :class:`Connector`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from cueflow.sql.tables import (
    alerts,
    cues,
    echo_messages,
    executions,
    rotated_keys,
    users,
    workers,
)
from cueflow.states import Move
from cueflow.store import Duplicate, ExecutionFilter, ExecutionPage, FirePlan, Row


class Connection(Protocol):
    """An open transaction that runs statements (sync drivers wrap theirs in coroutines)."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement and return SQLAlchemy's buffered result."""


class Connector(Protocol):
    """The database-specific half of a SQL store, provided by a store plugin."""

    name: str
    skip_locked: bool
    """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` is available (several writers)."""

    def begin(self) -> Any:
        """An async context manager yielding a :class:`Connection` inside a transaction."""

    def insert(self, table: Any) -> Any:
        """The dialect's ``insert`` construct (one that has ``on_conflict_do_nothing``)."""

    async def open(self) -> None:
        """Connect and migrate."""

    async def close(self) -> None:
        """Disconnect."""

    async def notify(self, conn: Connection) -> None:
        """Signal other nodes that schedules changed, inside ``conn``'s transaction."""

    async def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another node signals a schedule change."""


_UNIQUE_HINTS = {
    "email": "email",
    "slug": "slug",
    "uq_cues_user_name": "name",
    "cues.user_id": "name",
}


def _duplicate(exc: IntegrityError) -> Duplicate:
    text = str(exc.orig)
    for hint, constraint in _UNIQUE_HINTS.items():
        if hint in text:
            return Duplicate(constraint)
    raise exc


class SqlStore:
    """A :class:`cueflow.store.Store` over a :class:`Connector`."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.name = connector.name

    async def open(self) -> None:
        """Connect and migrate."""
        await self.connector.open()

    async def close(self) -> None:
        """Disconnect."""
        await self.connector.close()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[SqlTx]:
        """A unit of work in one database transaction."""
        async with self.connector.begin() as conn:
            yield SqlTx(conn, self.connector)

    async def listen(self, callback: Callable[[], None]) -> None:
        """Forward other nodes' schedule changes to ``callback``."""
        await self.connector.listen(callback)


def _lock(stmt: Select[Any], connector: Connector) -> Select[Any]:
    if connector.skip_locked:
        return stmt.with_for_update(skip_locked=True, of=stmt.get_final_froms()[0])
    return stmt


class SqlTx:
    """The statements of one unit of work."""

    def __init__(self, conn: Connection, connector: Connector) -> None:
        self.conn = conn
        self.connector = connector

    async def _one(self, stmt: Any) -> Row | None:
        return (await self.conn.execute(stmt)).mappings().first()

    async def _all(self, stmt: Any) -> list[Row]:
        return list((await self.conn.execute(stmt)).mappings().all())

    async def _count(self, stmt: Select[Any]) -> int:
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
        return int((await self.conn.execute(counted)).scalar_one())

    # accounts -------------------------------------------------------------------------------
    async def insert_user(self, values: dict[str, Any]) -> None:
        """Insert a user."""
        try:
            await self.conn.execute(users.insert().values(**values))
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def user_by_key_hash(self, key_hash: str) -> Row | None:
        """The user owning a key hash."""
        return await self._one(select(users).where(users.c.api_key_hash == key_hash))

    async def user_by_email(self, email: str) -> Row | None:
        """The user registered with ``email``."""
        return await self._one(select(users).where(users.c.email == email))

    async def get_user(self, user_id: str) -> Row | None:
        """One user by id."""
        return await self._one(select(users).where(users.c.id == user_id))

    async def update_user(
        self, user_id: str, values: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> Row | None:
        """Conditionally update one user."""
        conditions = [users.c.id == user_id]
        for column, value in (expect or {}).items():
            col = users.c[column]
            conditions.append(col.is_(None) if value is None else col == value)
        stmt = update(users).where(*conditions).values(**values).returning(*users.c)
        try:
            return await self._one(stmt)
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    # cues -----------------------------------------------------------------------------------
    async def insert_cue(self, values: dict[str, Any]) -> None:
        """Insert a cue."""
        try:
            await self.conn.execute(cues.insert().values(**values))
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def get_cue(self, user_id: str, cue_id: str) -> Row | None:
        """One of the user's cues."""
        return await self._one(select(cues).where(cues.c.id == cue_id, cues.c.user_id == user_id))

    async def cue_name_taken(self, user_id: str, name: str) -> bool:
        """Whether the user has a cue called ``name``."""
        stmt = select(cues.c.id).where(cues.c.user_id == user_id, cues.c.name == name)
        return await self._one(stmt) is not None

    async def list_cues(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """A page of cues, newest first."""
        stmt = select(cues).where(cues.c.user_id == user_id)
        if status is not None:
            stmt = stmt.where(cues.c.status == status)
        total = await self._count(stmt)
        page = stmt.order_by(cues.c.created_at.desc(), cues.c.id.desc()).limit(limit).offset(offset)
        return await self._all(page), total

    async def update_cue(self, user_id: str, cue_id: str, values: dict[str, Any]) -> Row | None:
        """Update one cue and return it."""
        stmt = (
            update(cues)
            .where(cues.c.id == cue_id, cues.c.user_id == user_id)
            .values(**values)
            .returning(*cues.c)
        )
        try:
            return await self._one(stmt)
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def delete_cue(self, user_id: str, cue_id: str) -> bool:
        """Delete a cue and its executions."""
        await self.conn.execute(
            executions.delete().where(
                executions.c.cue_id == cue_id, executions.c.user_id == user_id
            )
        )
        result = await self.conn.execute(
            cues.delete().where(cues.c.id == cue_id, cues.c.user_id == user_id)
        )
        return bool(result.rowcount)

    async def earliest_next_run(self) -> datetime | None:
        """The soonest due time of any active cue."""
        stmt = select(func.min(cues.c.next_run)).where(
            cues.c.status == "active", cues.c.next_run.is_not(None)
        )
        value = (await self.conn.execute(stmt)).scalar()
        return (
            cues.c.next_run.type.process_result_value(value, _Dialectless)
            if isinstance(value, str)
            else value
        )

    async def fire_due(
        self, now: datetime, limit: int, plan: Callable[[Row], FirePlan]
    ) -> tuple[int, list[Row]]:
        """Fire due cues in one transaction (see the protocol)."""
        due = _lock(
            select(cues)
            .where(cues.c.status == "active", cues.c.next_run.is_not(None), cues.c.next_run <= now)
            .order_by(cues.c.next_run)
            .limit(limit),
            self.connector,
        )
        rows = await self._all(due)
        if not rows:
            return 0, []
        plans = {row["id"]: plan(row) for row in rows}
        planned = [values for p in plans.values() for values in p.executions]
        inserted: list[Row] = []
        columns = sorted({key for values in planned for key in values})
        for start in range(0, len(planned), 200):
            chunk = [{c: values.get(c) for c in columns} for values in planned[start : start + 200]]
            stmt = (
                self.connector.insert(executions)
                .values(chunk)
                .on_conflict_do_nothing(index_elements=["cue_id", "scheduled_for"])
                .returning(executions.c.id, executions.c.cue_id, executions.c.status)
            )
            inserted.extend(await self._all(stmt))
        fired: dict[str, int] = {}
        for row in inserted:
            fired[row["cue_id"]] = fired.get(row["cue_id"], 0) + 1
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for cue_id, p in plans.items():
            values = {**p.cue_values, **(p.cue_values_if_fired if fired.get(cue_id) else {})}
            params = {f"v_{k}": v for k, v in values.items()}
            params.update(v_id=cue_id, v_fired=fired.get(cue_id, 0))
            groups.setdefault(tuple(sorted(values)), []).append(params)
        for keys, params_list in groups.items():
            stmt = (
                update(cues)
                .where(cues.c.id == bindparam("v_id"))
                .values(
                    fired_count=cues.c.fired_count + bindparam("v_fired"),
                    **{k: bindparam(f"v_{k}") for k in keys},
                )
            )
            await self.conn.execute(stmt, params_list)
        return len(rows), inserted

    # executions -----------------------------------------------------------------------------
    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution unless its fire key exists."""
        stmt = (
            self.connector.insert(executions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["cue_id", "scheduled_for"])
            .returning(executions.c.id)
        )
        return await self._one(stmt) is not None

    async def get_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions."""
        return await self._one(
            select(executions).where(
                executions.c.id == execution_id, executions.c.user_id == user_id
            )
        )

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A filtered page of executions, newest first."""
        conditions = [executions.c.user_id == user_id]
        if where.cue_id is not None:
            conditions.append(executions.c.cue_id == where.cue_id)
        if where.statuses is not None:
            conditions.append(executions.c.status.in_(list(where.statuses)))
        if where.worker_id is not None:
            conditions.append(executions.c.claimed_by_worker == where.worker_id)
        if where.outcome_state is not None:
            conditions.append(executions.c.outcome_state == where.outcome_state)
        summary = select(func.count(), func.min(executions.c.claimed_at)).where(*conditions)
        total, oldest = (await self.conn.execute(summary)).one()
        page = (
            select(executions)
            .where(*conditions)
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if isinstance(oldest, str | datetime):
            oldest = executions.c.claimed_at.type.process_result_value(
                datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest, _Dialectless
            )
        return ExecutionPage(await self._all(page), int(total), oldest)

    async def cue_executions(
        self, user_id: str, cue_id: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """A page of one cue's executions."""
        stmt = select(executions).where(
            executions.c.user_id == user_id, executions.c.cue_id == cue_id
        )
        total = await self._count(stmt)
        page = stmt.order_by(executions.c.created_at.desc(), executions.c.id.desc())
        return await self._all(page.limit(limit).offset(offset)), total

    async def claimable(
        self,
        user_id: str,
        transports: Sequence[str],
        statuses: Sequence[str],
        now: datetime,
        task: str | None,
        limit: int,
    ) -> list[Row]:
        """Executions waiting for a worker, oldest first."""
        stmt = (
            select(
                executions.c.id,
                executions.c.cue_id,
                executions.c.scheduled_for,
                executions.c.attempts,
                cues.c.name.label("cue_name"),
                cues.c.task,
                cues.c.payload,
            )
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.user_id == user_id,
                executions.c.status.in_(list(statuses)),
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= now,
            )
        )
        if task is not None:
            stmt = stmt.where(cues.c.task == task)
        return await self._all(stmt.order_by(executions.c.scheduled_for).limit(limit))

    async def claim(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_id: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> Row | None:
        """Atomically claim one due execution."""
        waiting = and_(
            executions.c.user_id == user_id,
            executions.c.status.in_(move.sources),
            executions.c.transport.in_(list(transports)),
            executions.c.scheduled_for <= now,
        )
        if execution_id is not None:
            target = executions.c.id == execution_id
        else:
            oldest = _lock(
                select(executions.c.id)
                .where(waiting)
                .order_by(executions.c.scheduled_for)
                .limit(1),
                self.connector,
            ).scalar_subquery()
            target = executions.c.id == oldest
        stmt = (
            update(executions)
            .where(target, waiting)
            .values(status=move.target, attempts=executions.c.attempts + 1, **values)
            .returning(executions.c.id, executions.c.attempts, executions.c.cue_id)
        )
        return await self._one(stmt)

    async def update_execution(
        self,
        execution_id: str,
        values: dict[str, Any],
        *,
        move: Move | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Row | None:
        """Conditionally update one execution."""
        conditions = [executions.c.id == execution_id]
        if move is not None:
            conditions.append(executions.c.status.in_(move.sources))
            values = {**values, "status": move.target}
        for column, value in (expect or {}).items():
            col = executions.c[column]
            conditions.append(col.is_(None) if value is None else col == value)
        stmt = update(executions).where(*conditions).values(**values).returning(*executions.c)
        return await self._one(stmt)

    async def record_outcome(
        self,
        user_id: str,
        execution_id: str,
        values: dict[str, Any],
        move: Move | None,
        holder: str | None,
    ) -> Row | None:
        """Write an outcome once."""
        conditions = [
            executions.c.id == execution_id,
            executions.c.user_id == user_id,
            executions.c.outcome_recorded_at.is_(None),
        ]
        if holder is not None:
            conditions.append(
                or_(
                    executions.c.status != "delivering",
                    executions.c.claimed_by_worker.is_(None),
                    executions.c.claimed_by_worker == holder,
                )
            )
        if move is not None:
            values = {
                **values,
                "status": case(
                    (executions.c.status.in_(move.sources), literal(move.target)),
                    else_=executions.c.status,
                ),
            }
        stmt = update(executions).where(*conditions).values(**values).returning(*executions.c)
        return await self._one(stmt)

    async def expired_leases(
        self, now: datetime, stale_before: datetime, transports: Sequence[str], limit: int
    ) -> list[Row]:
        """Claims whose lease ended or whose worker went silent."""
        stale_worker = (
            select(literal(1))
            .where(
                workers.c.user_id == executions.c.user_id,
                workers.c.worker_id == executions.c.claimed_by_worker,
                workers.c.last_heartbeat < stale_before,
            )
            .exists()
        )
        stmt = _lock(
            select(
                executions.c.id,
                executions.c.cue_id,
                executions.c.user_id,
                executions.c.attempts,
                executions.c.claimed_by_worker,
                executions.c.lease_expires_at,
                cues.c.name.label("cue_name"),
                cues.c.retry_max_attempts,
                cues.c.retry_backoff_minutes,
                cues.c.schedule_type,
                cues.c.on_failure,
            )
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == "delivering",
                executions.c.transport.in_(list(transports)),
                or_(
                    executions.c.lease_expires_at <= now,
                    and_(
                        stale_worker,
                        func.coalesce(executions.c.last_heartbeat_at, executions.c.claimed_at)
                        < stale_before,
                    ),
                ),
            )
            .limit(limit),
            self.connector,
        )
        return await self._all(stmt)

    async def promote_retries(
        self, transports: Sequence[str], move: Move, now: datetime, values: dict[str, Any]
    ) -> int:
        """Make due retries ready for delivery (rows other nodes hold are left to them)."""
        due = and_(
            executions.c.status.in_(move.sources),
            executions.c.transport.in_(list(transports)),
            executions.c.next_retry <= now,
        )
        held = _lock(select(executions.c.id).where(due), self.connector)
        stmt = (
            update(executions)
            .where(executions.c.id.in_(held), due)
            .values(status=move.target, **values)
        )
        return int((await self.conn.execute(stmt)).rowcount or 0)

    async def claim_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        values: dict[str, Any],
        tasks: Collection[str] | None = None,
    ) -> list[Row]:
        """Claim a batch of due push executions (see the protocol)."""
        if tasks is not None and not tasks:
            return []
        waiting = and_(
            executions.c.status.in_(move.sources),
            executions.c.transport == transport,
            executions.c.scheduled_for <= now,
        )
        if tasks is not None:
            waiting = and_(waiting, _task_in(tasks))
        due = _lock(
            select(executions.c.id)
            .where(waiting)
            .order_by(executions.c.scheduled_for)
            .limit(limit),
            self.connector,
        )
        ids = [row["id"] for row in await self._all(due)]
        if not ids:
            return []
        claim = (
            update(executions)
            .where(executions.c.id.in_(ids), waiting)
            .values(
                status=move.target,
                attempts=executions.c.attempts + 1,
                started_at=func.coalesce(
                    executions.c.started_at, literal(now, executions.c.started_at.type)
                ),
                **values,
            )
            .returning(executions.c.id)
        )
        claimed = [row["id"] for row in await self._all(claim)]
        if not claimed:
            return []
        stmt = (
            select(
                executions.c.id,
                executions.c.cue_id,
                executions.c.user_id,
                executions.c.scheduled_for,
                executions.c.attempts,
                cues.c.name.label("cue_name"),
                cues.c.task,
                cues.c.callback_url,
                cues.c.callback_method,
                cues.c.callback_headers,
                cues.c.payload,
                cues.c.retry_max_attempts,
                cues.c.retry_backoff_minutes,
                cues.c.schedule_type,
                cues.c.on_failure,
                cues.c.verification_mode,
                cues.c.timeout_seconds,
                users.c.webhook_secret,
            )
            .join(cues, cues.c.id == executions.c.cue_id)
            .join(users, users.c.id == executions.c.user_id)
            .where(executions.c.id.in_(claimed))
            .order_by(executions.c.scheduled_for)
        )
        return await self._all(stmt)

    async def next_delivery_due(
        self, transports: Sequence[str], tasks: Mapping[str, Collection[str]] | None = None
    ) -> datetime | None:
        """The earliest time the dispatcher has work for ``transports``."""
        tasks = tasks or {}
        push = executions.c.transport.in_(list(transports))
        servable = [
            executions.c.transport == name
            if name not in tasks
            else and_(executions.c.transport == name, _task_in(tasks[name]))
            for name in transports
            if tasks.get(name, True)
        ]
        found: list[datetime] = []
        for status, column, where in (
            ("pending", executions.c.scheduled_for, or_(false(), *servable)),
            ("retrying", executions.c.next_retry, push),
            ("delivering", executions.c.lease_expires_at, push),
        ):
            stmt = select(func.min(column)).where(executions.c.status == status, where)
            value = (await self.conn.execute(stmt)).scalar()
            if value is not None:
                found.append(value)
        return min(found, default=None)

    async def unserved_deliveries(
        self, transport: str, tasks: Collection[str], before: datetime, limit: int
    ) -> list[Row]:
        """Pending executions nobody here can deliver that are not marked yet."""
        stmt = (
            select(executions.c.id, cues.c.task)
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == "pending",
                executions.c.transport == transport,
                executions.c.scheduled_for < before,
                executions.c.error_message.is_(None),
                or_(cues.c.task.is_(None), cues.c.task.not_in(list(tasks))),
            )
            .order_by(executions.c.scheduled_for)
            .limit(limit)
        )
        return await self._all(stmt)

    async def unclaimed(self, before: datetime, transports: Sequence[str], limit: int) -> list[Row]:
        """Pending executions nobody claimed in time."""
        stmt = _lock(
            select(executions.c.id, executions.c.cue_id, cues.c.schedule_type, cues.c.on_failure)
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == "pending",
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= before,
                executions.c.updated_at <= before,
            )
            .limit(limit),
            self.connector,
        )
        return await self._all(stmt)

    async def bump_cue(
        self,
        cue_id: str,
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
    ) -> None:
        """Count a run and set values on a cue."""
        new_values = dict(values or {})
        if run_count:
            new_values["run_count"] = cues.c.run_count + run_count
        if not new_values:
            return
        stmt = update(cues).where(cues.c.id == cue_id)
        if only_if_status is not None:
            stmt = stmt.where(cues.c.status.in_(list(only_if_status)))
        await self.conn.execute(stmt.values(**new_values))

    # workers --------------------------------------------------------------------------------
    async def upsert_worker(
        self, user_id: str, worker_id: str, handlers: list[str] | None, now: datetime
    ) -> None:
        """Create or refresh a worker row."""
        import uuid

        stmt = self.connector.insert(workers).values(
            id=str(uuid.uuid4()),
            user_id=user_id,
            worker_id=worker_id,
            handlers=handlers,
            last_heartbeat=now,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "worker_id"],
            set_={
                "handlers": stmt.excluded.handlers,
                "last_heartbeat": stmt.excluded.last_heartbeat,
            },
        )
        await self.conn.execute(stmt)

    async def list_workers(self, user_id: str) -> list[Row]:
        """The user's workers."""
        return await self._all(
            select(workers)
            .where(workers.c.user_id == user_id)
            .order_by(workers.c.last_heartbeat.desc())
        )

    async def extend_worker_leases(
        self, user_id: str, worker_id: str, transports: Sequence[str], until: datetime
    ) -> int:
        """Extend the leases of a worker's claims."""
        stmt = (
            update(executions)
            .where(
                executions.c.user_id == user_id,
                executions.c.claimed_by_worker == worker_id,
                executions.c.status == "delivering",
                executions.c.transport.in_(list(transports)),
                executions.c.lease_expires_at < until,
            )
            .values(lease_expires_at=until)
        )
        return int((await self.conn.execute(stmt)).rowcount)

    async def delete_worker(self, user_id: str, worker_id: str) -> bool:
        """Forget a worker."""
        result = await self.conn.execute(
            workers.delete().where(workers.c.user_id == user_id, workers.c.worker_id == worker_id)
        )
        return bool(result.rowcount)

    async def count_live_workers(self, user_id: str, since: datetime) -> int:
        """Workers heard from since ``since``."""
        stmt = select(func.count()).where(
            workers.c.user_id == user_id, workers.c.last_heartbeat >= since
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    # alerts ---------------------------------------------------------------------------------
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
    ) -> tuple[list[Row], int]:
        """A page of the user's alerts, newest first."""
        stmt = select(alerts).where(alerts.c.user_id == user_id)
        if alert_type is not None:
            stmt = stmt.where(alerts.c.alert_type == alert_type)
        if since is not None:
            stmt = stmt.where(alerts.c.created_at >= since)
        total = await self._count(stmt)
        page = stmt.order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
        return await self._all(page.limit(limit).offset(offset)), total

    async def notify_schedule_changed(self) -> None:
        """Wake the schedulers of other nodes."""
        await self.connector.notify(self.conn)

    # account keys, plan limits and usage ------------------------------------------------------
    async def lock_user(self, user_id: str) -> Row | None:
        """One user, locked (``FOR UPDATE``; SQLite transactions are serial already)."""
        return await self._one(select(users).where(users.c.id == user_id).with_for_update())

    async def remember_rotated_key(self, key_hash: str, user_id: str, now: datetime) -> None:
        """Record a replaced key's hash."""
        stmt = self.connector.insert(rotated_keys).values(
            key_hash=key_hash, user_id=user_id, rotated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_hash"],
            set_={"user_id": stmt.excluded.user_id, "rotated_at": stmt.excluded.rotated_at},
        )
        await self.conn.execute(stmt)

    async def key_rotated_since(self, key_hash: str, since: datetime) -> bool:
        """Whether a key was replaced at or after ``since``."""
        stmt = select(rotated_keys.c.key_hash).where(
            rotated_keys.c.key_hash == key_hash, rotated_keys.c.rotated_at >= since
        )
        return await self._one(stmt) is not None

    async def forget_rotated_keys(self, before: datetime) -> None:
        """Drop old rotation records."""
        await self.conn.execute(rotated_keys.delete().where(rotated_keys.c.rotated_at < before))

    async def count_cues(self, user_id: str, statuses: Sequence[str]) -> int:
        """How many of the user's cues are in ``statuses``."""
        stmt = select(func.count()).where(
            cues.c.user_id == user_id, cues.c.status.in_(list(statuses))
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def usage_counts(self, user_id: str, since: datetime) -> dict[str, int]:
        """Cue and this-period execution figures of one user."""
        by_status = (
            select(cues.c.status, func.count())
            .where(cues.c.user_id == user_id, cues.c.status.in_(["active", "paused"]))
            .group_by(cues.c.status)
        )
        cue_counts = {row[0]: int(row[1]) for row in await self.conn.execute(by_status)}
        reported = executions.c.outcome_recorded_at.is_not(None)
        unreported = executions.c.outcome_recorded_at.is_(None)
        figures = {
            "executions": executions.c.status != "missed",
            "reported": reported,
            "succeeded": and_(reported, executions.c.outcome_success.is_(True)),
            "failed": and_(reported, executions.c.outcome_success.is_(False)),
            "failed_unreported": and_(unreported, executions.c.status.in_(["failed", "missed"])),
        }
        stmt = select(
            *(_count_if(condition).label(name) for name, condition in figures.items())
        ).where(executions.c.user_id == user_id, executions.c.created_at >= since)
        row = (await self.conn.execute(stmt)).mappings().one()
        return {
            "active_cues": cue_counts.get("active", 0),
            "paused_cues": cue_counts.get("paused", 0),
            **{name: int(row[name] or 0) for name in figures},
        }

    async def due_users_executions(self, now: datetime, since: datetime) -> dict[str, int]:
        """This-period execution counts of the users owning due cues."""
        due_users = select(cues.c.user_id).where(
            cues.c.status == "active", cues.c.next_run.is_not(None), cues.c.next_run <= now
        )
        stmt = (
            select(executions.c.user_id, func.count())
            .where(
                executions.c.user_id.in_(due_users),
                executions.c.created_at >= since,
                executions.c.status != "missed",
            )
            .group_by(executions.c.user_id)
        )
        return {row[0]: int(row[1]) for row in await self.conn.execute(stmt)}

    # verification and outcome alerts ----------------------------------------------------------
    async def lock_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions, locked."""
        stmt = select(executions).where(
            executions.c.id == execution_id, executions.c.user_id == user_id
        )
        return await self._one(stmt.with_for_update())

    async def finished_runs(self, cue_id: str, limit: int) -> list[Row]:
        """A cue's latest finished or reported executions, newest first."""
        stmt = (
            select(executions.c.id, executions.c.status, executions.c.outcome_success)
            .where(
                executions.c.cue_id == cue_id,
                or_(
                    executions.c.status.in_(["success", "failed"]),
                    executions.c.outcome_recorded_at.is_not(None),
                ),
            )
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
        )
        return await self._all(stmt)

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

    # echo receiver and health -----------------------------------------------------------------
    async def put_echo(self, values: dict[str, Any]) -> None:
        """Store or replace an echo message."""
        stmt = self.connector.insert(echo_messages).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["token"],
            set_={k: getattr(stmt.excluded, k) for k in values if k != "token"},
        )
        await self.conn.execute(stmt)

    async def get_echo(self, token: str, now: datetime) -> Row | None:
        """A live echo message."""
        stmt = select(echo_messages).where(
            echo_messages.c.token == token, echo_messages.c.expires_at >= now
        )
        return await self._one(stmt)

    async def forget_echoes(self, now: datetime) -> None:
        """Drop expired echo messages."""
        await self.conn.execute(echo_messages.delete().where(echo_messages.c.expires_at < now))

    async def queue_counts(
        self, push: Sequence[str], pull: Sequence[str], stale_before: datetime
    ) -> dict[str, int]:
        """Queue depth over all users."""
        status = executions.c.status
        figures = {
            "pending_outbox": and_(status == "pending", executions.c.transport.in_(list(push))),
            "stale_executions": and_(
                status == "delivering", executions.c.updated_at < stale_before
            ),
            "pending_retries": status.in_(["retrying", "retry_ready"]),
            "pending_worker_claims": and_(
                status == "pending", executions.c.transport.in_(list(pull))
            ),
        }
        stmt = select(
            *(_count_if(condition).label(name) for name, condition in figures.items())
        ).where(status.in_(["pending", "delivering", "retrying", "retry_ready"]))
        row = (await self.conn.execute(stmt)).mappings().one()
        return {name: int(row[name] or 0) for name in figures}


def _task_in(tasks: Collection[str]) -> Any:
    """Executions whose cue's ``task`` is one of ``tasks`` (a correlated key lookup, so the
    execution indexes still drive the query)."""
    return (
        select(literal(1))
        .where(cues.c.id == executions.c.cue_id, cues.c.task.in_(list(tasks)))
        .exists()
    )


def _count_if(condition: Any) -> Any:
    """``SUM(CASE WHEN condition THEN 1 ELSE 0 END)``: a count that fits beside others."""
    return func.sum(case((condition, 1), else_=0))


class _DialectlessType:
    name = "sqlite"


_Dialectless: Any = _DialectlessType()
