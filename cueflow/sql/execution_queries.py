"""Executions: inserts, history, outcomes, verification reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

import cueflow.sql.rows as rows
from cueflow.records import Execution, FinishedRun, OutcomeTarget
from cueflow.sql.base import (
    TxBase,
    _Dialectless,
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
from cueflow.states import Move, Status
from cueflow.store import CueRun, ExecutionFilter, ExecutionPage, ReportGate


class ExecutionQueries(TxBase):
    """Executions: inserts, history, outcomes, verification reads."""

    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution unless its fire key exists."""
        stmt = (
            self.connector.insert(executions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=FIRE_KEY, index_where=FIRE_KEY_WHERE)
            .returning(executions.c.id)
        )
        return await self._one(stmt) is not None

    async def get_execution(self, user_id: str, execution_id: str) -> Execution | None:
        """One of the user's executions."""
        stmt = self._prepared(
            ("get_execution",),
            lambda: select(executions).where(
                executions.c.id == bindparam("p_id"), owned_by(executions, bindparam("p_user_id"))
            ),
        )
        return await self._record(
            rows.execution, stmt, {"p_id": execution_id, "p_user_id": user_id}
        )

    async def outcome_targets(
        self, user_id: str, execution_ids: Sequence[str]
    ) -> list[OutcomeTarget]:
        """The user's executions among ``execution_ids``, each with its cue's
        ``cue_verification_mode`` and ``cue_schedule_type`` (any order; one statement)."""
        if not execution_ids:
            return []
        one = len(execution_ids) == 1
        stmt = self._prepared(
            ("outcome_targets", one),
            lambda: (
                select(
                    executions,
                    cues.c.verification_mode.label("cue_verification_mode"),
                    cues.c.schedule_type.label("cue_schedule_type"),
                )
                .select_from(executions.outerjoin(cues, cues.c.id == executions.c.cue_id))
                .where(_keyed(one))
            ),
        )
        # Looked up by primary key only, the owner checked here: with the owner in the WHERE
        # clause SQLite walks the owner's index over all of their executions instead.
        result = await self.conn.execute(stmt, _key_params(execution_ids))
        found = rows.outcome_targets(tuple(result.keys()), result.all())
        return [target for target in found if target.execution.user_id == user_id]

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A filtered page of executions, newest first."""
        conditions = [executions.c.user_id == user_id]
        if where.cue_id is not None:
            conditions.append(executions.c.cue_id == where.cue_id)
        if where.flow_run_id is not None:
            conditions.append(executions.c.flow_run_id == where.flow_run_id)
        if where.step_id is not None:
            conditions.append(executions.c.step_id == where.step_id)
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
            oldest = UTCDateTime().process_result_value(
                datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest, _Dialectless
            )
        return ExecutionPage(await self._records(rows.execution, page), int(total), oldest)

    async def cue_executions(
        self, user_id: str, cue_id: str, limit: int, offset: int
    ) -> tuple[list[Execution], int]:
        """A page of one cue's executions."""
        stmt = select(executions).where(
            executions.c.user_id == user_id, executions.c.cue_id == cue_id
        )
        total = await self._count(stmt)
        page = stmt.order_by(executions.c.created_at.desc(), executions.c.id.desc())
        return await self._records(rows.execution, page.limit(limit).offset(offset)), total

    async def update_execution(
        self,
        execution_id: str,
        values: dict[str, Any],
        *,
        move: Move | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Execution | None:
        """Conditionally update one execution."""
        conditions = [executions.c.id == execution_id]
        if move is not None:
            conditions.append(executions.c.status.in_(move.sources))
            values = {**values, "status": move.target}
        for column, value in (expect or {}).items():
            col = executions.c[column]
            conditions.append(col.is_(None) if value is None else col == value)
        stmt = update(executions).where(*conditions).values(**values).returning(*executions.c)
        return await self._record(rows.execution, stmt)

    async def move_executions(
        self, execution_ids: Sequence[str], attempts: int, values: dict[str, Any], move: Move
    ) -> list[Execution]:
        """Move several held attempts on in one statement (see the protocol)."""
        if not execution_ids:
            return []

        def build() -> Any:
            return (
                update(executions)
                .where(
                    executions.c.id.in_(bindparam("p_ids", expanding=True)),
                    executions.c.status.in_(bindparam("p_sources", expanding=True)),
                    executions.c.attempts == bindparam("p_attempts"),
                )
                .values(status=bindparam("p_target"), **bound_values(executions, values))
                .returning(*executions.c)
            )

        params = value_params(values)
        params.update(
            p_ids=list(execution_ids),
            p_sources=list(move.sources),
            p_attempts=attempts,
            p_target=move.target,
        )
        stmt = self._prepared(("move_executions", *sorted(values)), build)
        return await self._records(rows.execution, stmt, params)

    async def open_runs(
        self, cue_ids: Sequence[str], statuses: Sequence[str], *, lock: bool = False
    ) -> list[Execution]:
        """The cues' unfinished executions (flow steps aside), oldest first; with ``lock``
        those nobody else holds, locked."""
        if not cue_ids:
            return []
        stmt = (
            select(executions)
            .where(
                executions.c.cue_id.in_(list(cue_ids)),
                executions.c.status.in_(list(statuses)),
                executions.c.flow_run_id.is_(None),
            )
            .order_by(executions.c.scheduled_for, executions.c.id)
        )
        if lock:
            stmt = _lock(stmt, self.connector)
        return await self._records(rows.execution, stmt)

    async def restamp_executions(
        self, cue_id: str, statuses: Sequence[str], values: dict[str, Any]
    ) -> int:
        """Restamp a cue's executions in ``statuses``."""
        stmt = (
            update(executions)
            .where(executions.c.cue_id == cue_id, executions.c.status.in_(list(statuses)))
            .values(**values)
        )
        return int((await self.conn.execute(stmt)).rowcount or 0)

    async def record_outcomes(
        self,
        user_id: str,
        execution_ids: Sequence[str],
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
    ) -> list[Execution]:
        """Write the same outcome on several executions, each only once."""
        one = len(execution_ids) == 1
        key = ("record_outcomes", move, _gate_key(gate), one, *sorted(values))
        params = _outcome_params(user_id, execution_ids, values, gate)
        return await self._records(
            rows.execution,
            self._prepared(key, lambda: _outcome_update(values, move, gate, one)),
            params,
        )

    async def record_outcome(
        self,
        user_id: str,
        execution_id: str,
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
        run: CueRun | None,
    ) -> Execution | None:
        """Write one outcome and count its cue's run. PostgreSQL: one statement (the cue's
        update is a data-modifying CTE over the written row). Elsewhere: two statements, in
        the enclosing transaction."""
        params = _outcome_params(user_id, [execution_id], values, gate)
        if run is None or not self.connector.skip_locked:
            written = await self.record_outcomes(user_id, [execution_id], values, move, gate)
            if not written or run is None:
                return written[0] if written else None
            status = bindparam("p_status", type_=String())
            await self.conn.execute(
                self._prepared(
                    ("count_cue_run", run.ends, *sorted(run.values)),
                    lambda: _count_run(
                        run, update(cues).where(cues.c.id == bindparam("p_cue")), status
                    ),
                ),
                {**_run_params(run), "p_status": written[0].status, "p_cue": written[0].cue_id},
            )
            return written[0]

        def build() -> Any:
            written = _outcome_update(values, move, gate, True).cte("written")
            counted = _count_run(
                run, update(cues).where(cues.c.id == written.c.cue_id), written.c.status
            ).cte("counted")
            return select(*written.c).add_cte(counted)

        key = ("record_outcome", move, _gate_key(gate), run.ends, *sorted(values))
        key += ("run", *sorted(run.values))
        params.update(_run_params(run))
        return await self._record(rows.execution, self._prepared(key, build), params)

    async def lock_execution(self, user_id: str, execution_id: str) -> Execution | None:
        """One of the user's executions, locked."""
        stmt = select(executions).where(
            executions.c.id == execution_id, owned_by(executions, user_id)
        )
        return await self._record(rows.execution, stmt.with_for_update())

    async def finished_runs(self, cue_id: str, limit: int) -> list[FinishedRun]:
        """A cue's latest finished or reported executions, newest first."""
        stmt = (
            select(executions.c.id, executions.c.status, executions.c.outcome_success)
            .where(
                executions.c.cue_id == cue_id,
                or_(
                    executions.c.status.in_([Status.SUCCESS.value, Status.FAILED.value]),
                    executions.c.outcome_recorded_at.is_not(None),
                ),
            )
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
        )
        return await self._records(rows.finished_run, stmt)


def _keyed(one: bool) -> Any:
    """The executions looked up by key: ``id = :p_id`` for one (no ``IN`` list rendered again
    at each execution), else one of ``:p_ids``."""
    return executions.c.id == bindparam("p_id") if one else in_bound(executions.c.id, "p_ids")


def _key_params(execution_ids: Sequence[str]) -> dict[str, Any]:
    """The parameters of :func:`_keyed`."""
    if len(execution_ids) == 1:
        return {"p_id": execution_ids[0]}
    return {"p_ids": list(execution_ids)}


def _gate_key(gate: ReportGate | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """What of ``gate`` is fixed in an outcome's statement (its statuses; the worker is bound)."""
    return None if gate is None else (gate.open, gate.held)


def _outcome_params(
    user_id: str, execution_ids: Sequence[str], values: dict[str, Any], gate: ReportGate | None
) -> dict[str, Any]:
    """The parameters of :func:`_outcome_update`."""
    params = {**value_params(values), **_key_params(execution_ids), "p_user_id": user_id}
    if gate is not None:
        params["p_holder"] = gate.worker_id
    return params


def _outcome_update(
    values: dict[str, Any], move: Move | None, gate: ReportGate | None, one: bool
) -> Any:
    """``UPDATE executions`` writing an outcome (``values``) on the executions looked up by key
    (:func:`_keyed`) where none is recorded and the gate lets its worker report (the gate's
    statuses fixed in the statement), moving the status by ``move``; returns the written
    rows."""
    conditions = [
        _keyed(one),
        # found by key only: see owned_by()
        owned_by(executions, bindparam("p_user_id")),
        executions.c.outcome_recorded_at.is_(None),
    ]
    if gate is not None:
        conditions.append(
            or_(
                any_equal(executions.c.status, gate.open),
                executions.c.claimed_by_worker.is_(None),
                and_(
                    any_equal(executions.c.status, gate.held),
                    executions.c.claimed_by_worker == bindparam("p_holder"),
                ),
            )
        )
    new_values = bound_values(executions, values)
    if move is not None:
        new_values["status"] = case(
            (any_equal(executions.c.status, move.sources), literal(move.target)),
            else_=executions.c.status,
        )
    return update(executions).where(*conditions).values(**new_values).returning(*executions.c)


def _count_run(run: CueRun, stmt: Any, status: Any) -> Any:
    """``stmt`` (an ``UPDATE cues``) counting one run and setting ``run.values``; the cue
    moves by the first of ``run.ends`` whose statuses hold ``status`` (the written
    execution's status: its column, or a bound parameter)."""
    new_values: dict[str, Any] = {c: bindparam(f"r_{c}", type_=cues.c[c].type) for c in run.values}
    new_values["run_count"] = cues.c.run_count + 1
    if run.ends:
        new_values["status"] = case(
            *(
                (
                    and_(any_equal(status, statuses), any_equal(cues.c.status, end.sources)),
                    literal(end.target),
                )
                for statuses, end in run.ends
            ),
            else_=cues.c.status,
        )
    return stmt.values(**new_values)


def _run_params(run: CueRun) -> dict[str, Any]:
    """The parameters of :func:`_count_run`."""
    return {f"r_{c}": v for c, v in run.values.items()}
