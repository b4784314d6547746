"""Cues and the scheduler's due-cue firing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

import cueflow.sql.rows as rows
from cueflow.records import Cue, FiredRun
from cueflow.sql.base import (
    TxBase,
    _Dialectless,
    _duplicate,
    _lock,
    any_equal,
    bound_values,
    in_bound,
    owned_by,
    value_params,
)
from cueflow.sql.tables import (
    FIRE_KEY,
    FIRE_KEY_WHERE,
    cues,
    executions,
)
from cueflow.sql.types import UTCDateTime
from cueflow.states import CueStatus, Move
from cueflow.store import FirePlan


class CueQueries(TxBase):
    """Cues and the scheduler's due-cue firing."""

    async def insert_cue(self, values: dict[str, Any]) -> None:
        """Insert a cue."""
        try:
            # Parameters, not ``.values()``: the statement stays the same, so its compiled
            # form is reused instead of building and keying a new one per cue.
            await self.conn.execute(self._prepared(("insert_cue",), cues.insert), values)
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def get_cue(self, user_id: str, cue_id: str) -> Cue | None:
        """One of the user's cues."""
        stmt = self._prepared(
            ("get_cue",),
            lambda: select(cues).where(
                cues.c.id == bindparam("p_id"), owned_by(cues, bindparam("p_user_id"))
            ),
        )
        return await self._record(rows.cue, stmt, {"p_id": cue_id, "p_user_id": user_id})

    async def lock_cue(self, user_id: str, cue_id: str) -> Cue | None:
        """One of the user's cues, locked (``FOR UPDATE``; SQLite transactions are serial)."""
        stmt = select(cues).where(cues.c.id == cue_id, owned_by(cues, user_id))
        return await self._record(rows.cue, stmt.with_for_update())

    async def cue_name_taken(self, user_id: str, name: str) -> bool:
        """Whether the user has a cue called ``name``."""
        stmt = select(cues.c.id).where(cues.c.user_id == user_id, cues.c.name == name)
        return await self._one(stmt) is not None

    async def cue_named(self, user_id: str, name: str) -> Cue | None:
        """The user's cue called ``name`` (a flow step's hidden cue is none of theirs)."""
        stmt = select(cues).where(
            cues.c.user_id == user_id, cues.c.name == name, cues.c.flow_id.is_(None)
        )
        return await self._record(rows.cue, stmt)

    async def declared_cues(self) -> list[Cue]:
        """Every cue of every account declared in code (``declaration`` set), oldest first."""
        stmt = select(cues).where(cues.c.declaration.is_not(None), cues.c.flow_id.is_(None))
        return await self._records(rows.cue, stmt.order_by(cues.c.created_at, cues.c.id))

    async def list_cues(
        self,
        user_id: str,
        status: str | None,
        limit: int,
        offset: int,
        name_contains: str | None = None,
    ) -> tuple[list[Cue], int]:
        """A page of cues, newest first."""
        stmt = select(cues).where(cues.c.user_id == user_id, cues.c.flow_id.is_(None))
        if status is not None:
            stmt = stmt.where(cues.c.status == status)
        if name_contains:
            needle = name_contains.lower()
            stmt = stmt.where(func.lower(cues.c.name).contains(needle, autoescape=True))
        total = await self._count(stmt)
        page = stmt.order_by(cues.c.created_at.desc(), cues.c.id.desc()).limit(limit).offset(offset)
        return await self._records(rows.cue, page), total

    async def update_cue(self, user_id: str, cue_id: str, values: dict[str, Any]) -> Cue | None:
        """Update one cue and return it."""
        stmt = (
            update(cues)
            .where(cues.c.id == cue_id, owned_by(cues, user_id), cues.c.flow_id.is_(None))
            .values(**values)
            .returning(*cues.c)
        )
        try:
            return await self._record(rows.cue, stmt)
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def delete_cue(self, user_id: str, cue_id: str) -> bool:
        """Delete a cue and its executions."""
        await self.conn.execute(
            executions.delete().where(
                executions.c.cue_id == cue_id,
                executions.c.user_id == user_id,
                executions.c.flow_run_id.is_(None),
            )
        )
        result = await self.conn.execute(
            cues.delete().where(
                cues.c.id == cue_id, owned_by(cues, user_id), cues.c.flow_id.is_(None)
            )
        )
        return bool(result.rowcount)

    async def earliest_next_run(self) -> datetime | None:
        """The soonest due time of any active cue."""
        stmt = select(func.min(cues.c.next_run)).where(
            cues.c.status == CueStatus.ACTIVE.value, cues.c.next_run.is_not(None)
        )
        value = (await self.conn.execute(stmt)).scalar()
        if isinstance(value, str):  # a dialect that returns the stored text
            value = datetime.fromisoformat(value)
        return UTCDateTime().process_result_value(value, _Dialectless)

    async def fire_due(
        self,
        now: datetime,
        limit: int,
        plan: Callable[[Cue], FirePlan],
        prepare: Callable[[list[Cue]], Awaitable[None]] | None = None,
    ) -> tuple[int, list[FiredRun]]:
        """Fire due cues in one transaction (see the protocol)."""
        due = _lock(
            select(cues)
            .where(
                cues.c.status == CueStatus.ACTIVE.value,
                cues.c.next_run.is_not(None),
                cues.c.next_run <= now,
            )
            .order_by(cues.c.next_run)
            .limit(limit),
            self.connector,
        )
        locked = await self._records(rows.cue, due)
        if not locked:
            return 0, []
        if prepare is not None:
            await prepare(locked)
        plans = {cue.id: plan(cue) for cue in locked}
        planned = [values for p in plans.values() for values in p.executions]
        inserted: list[FiredRun] = []
        if planned:
            columns = sorted({key for values in planned for key in values})
            # One statement, many parameter sets: SQLAlchemy batches them into multi-row
            # inserts ("insertmanyvalues") without compiling a new statement per batch.
            stmt = self._prepared(
                ("fire_insert", *columns),
                lambda: (
                    self.connector.insert(executions)
                    .on_conflict_do_nothing(index_elements=FIRE_KEY, index_where=FIRE_KEY_WHERE)
                    .returning(executions.c.id, executions.c.cue_id, executions.c.status)
                ),
            )
            params = [{c: values.get(c) for c in columns} for values in planned]
            inserted = await self._records(rows.fired_run, stmt, params)
        fired: dict[str, int] = {}
        for run in inserted:
            fired[run.cue_id] = fired.get(run.cue_id, 0) + 1
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for cue_id, p in plans.items():
            values = {**p.cue_values, **(p.cue_values_if_fired if fired.get(cue_id) else {})}
            bound = {f"v_{k}": v for k, v in values.items()}
            bound.update(v_id=cue_id, v_fired=fired.get(cue_id, 0))
            groups.setdefault(tuple(sorted(values)), []).append(bound)
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
        return len(locked), inserted

    async def bump_cues(
        self,
        cue_ids: Sequence[str],
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
        finish: Move | None = None,
    ) -> None:
        """Count runs and set values on cues."""
        values = values or {}
        if not (values or run_count or finish):
            return

        def build() -> Any:
            new_values = bound_values(cues, values)
            if run_count:
                new_values["run_count"] = cues.c.run_count + bindparam("p_runs")
            if finish is not None:
                new_values["status"] = case(
                    (any_equal(cues.c.status, finish.sources), bindparam("p_finish")),
                    else_=cues.c.status,
                )
            stmt = update(cues).where(in_bound(cues.c.id, "p_ids"))
            if only_if_status is not None:
                stmt = stmt.where(in_bound(cues.c.status, "p_statuses"))
            return stmt.values(**new_values)

        key = (
            "bump_cues",
            bool(run_count),
            finish,
            only_if_status is not None,
            *sorted(values),
        )
        params = value_params(values)
        params.update(p_ids=list(cue_ids), p_runs=run_count)
        params["p_finish"] = finish.target if finish is not None else None
        if only_if_status is not None:
            params["p_statuses"] = list(only_if_status)
        await self.conn.execute(self._prepared(key, build), params)

    async def bump_cue(
        self,
        cue_id: str,
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
    ) -> None:
        """Count a run and set values on a cue."""
        await self.bump_cues(
            [cue_id], run_count=run_count, values=values, only_if_status=only_if_status
        )

    async def notify_schedule_changed(self) -> None:
        """Wake the schedulers of other nodes."""
        await self.connector.notify(self.conn)
