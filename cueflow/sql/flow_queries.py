"""The SQL of flows, runs and their steps (:class:`cueflow.store.flows.FlowStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

import cueflow.sql.rows as rows
from cueflow.records import Cue, FlowRecord, FlowRunRecord, StepRecord
from cueflow.sql.base import TxBase, owned_by
from cueflow.sql.tables import cues, executions, flow_runs, flow_steps, flows
from cueflow.states import Move
from cueflow.store import Duplicate

INSERT_BATCH = 200
"""Rows per multi-row INSERT: about 20 columns each stays far below the bound parameters a
statement may have (SQLite 32,766, asyncpg 32,767)."""


def _batches(values: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [list(values[i : i + INSERT_BATCH]) for i in range(0, len(values), INSERT_BATCH)]


def _flow_duplicate(exc: IntegrityError) -> Exception:
    text = str(exc.orig)
    if "uq_flows_user_name" in text or "flows.user_id" in text:
        return Duplicate("flow_name")
    return exc


class FlowQueries(TxBase):
    """Flow, run and step statements."""

    async def insert_flow(self, values: dict[str, Any]) -> None:
        """Insert a flow (see the protocol)."""
        try:
            await self.conn.execute(flows.insert().values(**values))
        except IntegrityError as exc:
            raise _flow_duplicate(exc) from exc

    async def get_flow(self, user_id: str, flow_id: str, lock: bool = False) -> FlowRecord | None:
        """One of the user's flows (``FOR SHARE`` with ``lock``; SQLite has one writer)."""
        stmt = select(flows).where(flows.c.id == flow_id, owned_by(flows, user_id))
        if lock and self.connector.skip_locked:
            stmt = stmt.with_for_update(read=True)
        return await self._record(rows.flow, stmt)

    async def list_flows(
        self, user_id: str, limit: int, offset: int
    ) -> tuple[list[FlowRecord], int]:
        """A page of the user's flows, newest first."""
        stmt = select(flows).where(flows.c.user_id == user_id)
        total = await self._count(stmt)
        page = stmt.order_by(flows.c.created_at.desc(), flows.c.id.desc()).limit(limit)
        return await self._records(rows.flow, page.offset(offset)), total

    async def update_flow(
        self, user_id: str, flow_id: str, values: dict[str, Any]
    ) -> FlowRecord | None:
        """Update one of the user's flows and return it."""
        stmt = (
            update(flows)
            .where(flows.c.id == flow_id, owned_by(flows, user_id))
            .values(**values)
            .returning(*flows.c)
        )
        try:
            return await self._record(rows.flow, stmt)
        except IntegrityError as exc:
            raise _flow_duplicate(exc) from exc

    async def delete_flow(self, user_id: str, flow_id: str) -> bool:
        """Delete a flow, its runs (steps cascade) and its hidden cues (executions cascade)."""
        found = await self._one(
            select(flows.c.id).where(flows.c.id == flow_id, owned_by(flows, user_id))
        )
        if found is None:
            return False
        await self.conn.execute(
            delete(executions).where(
                executions.c.cue_id.in_(select(cues.c.id).where(cues.c.flow_id == flow_id))
            )
        )
        await self.conn.execute(delete(cues).where(cues.c.flow_id == flow_id))
        runs = select(flow_runs.c.id).where(flow_runs.c.flow_id == flow_id)
        await self.conn.execute(delete(flow_steps).where(flow_steps.c.run_id.in_(runs)))
        await self.conn.execute(delete(flow_runs).where(flow_runs.c.flow_id == flow_id))
        await self.conn.execute(delete(flows).where(flows.c.id == flow_id))
        return True

    async def runs_step_cues(self, flow_id: str) -> set[str]:
        """The hidden cues the flow's runs refer to."""
        stmt = select(flow_runs.c.step_cues).where(flow_runs.c.flow_id == flow_id)
        return {cue for row in await self._all(stmt) for cue in (row["step_cues"] or {}).values()}

    async def delete_step_cues(self, flow_id: str, keep: Sequence[str]) -> list[str]:
        """Delete the flow's hidden cues not in ``keep``."""
        stmt = (
            delete(cues)
            .where(cues.c.flow_id == flow_id, cues.c.id.not_in(list(keep)))
            .returning(cues.c.id)
        )
        return [row["id"] for row in await self._all(stmt)]

    async def count_open_runs(self, flow_id: str, open_statuses: Sequence[str]) -> int:
        """How many of the flow's runs are open."""
        stmt = select(func.count()).where(
            flow_runs.c.flow_id == flow_id, flow_runs.c.status.in_(list(open_statuses))
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def insert_run(self, values: dict[str, Any]) -> bool:
        """Insert a run unless its idempotency key is taken."""
        stmt = (
            self.connector.insert(flow_runs)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["flow_id", "idempotency_key"])
            .returning(flow_runs.c.id)
        )
        return await self._one(stmt) is not None

    async def run_by_idempotency_key(self, flow_id: str, key: str) -> FlowRunRecord | None:
        """The flow's run started with ``key``."""
        return await self._record(
            rows.flow_run,
            select(flow_runs).where(
                flow_runs.c.flow_id == flow_id, flow_runs.c.idempotency_key == key
            ),
        )

    async def get_run(self, user_id: str, run_id: str) -> FlowRunRecord | None:
        """One of the user's runs."""
        return await self._record(
            rows.flow_run,
            select(flow_runs).where(flow_runs.c.id == run_id, owned_by(flow_runs, user_id)),
        )

    async def run_status(self, run_id: str) -> str | None:
        """A run's status."""
        stmt = select(flow_runs.c.status).where(flow_runs.c.id == run_id)
        status: str | None = (await self.conn.execute(stmt)).scalar()
        return status

    async def lock_run(self, run_id: str) -> FlowRunRecord | None:
        """A run, locked until the transaction ends (SQLite: its one writer holds the lock
        already)."""
        stmt = select(flow_runs).where(flow_runs.c.id == run_id)
        if self.connector.skip_locked:
            stmt = stmt.with_for_update()
        return await self._record(rows.flow_run, stmt)

    async def list_runs(
        self,
        user_id: str,
        flow_id: str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[FlowRunRecord], int]:
        """A page of the user's runs, newest first."""
        stmt = select(flow_runs).where(flow_runs.c.user_id == user_id)
        if flow_id is not None:
            stmt = stmt.where(flow_runs.c.flow_id == flow_id)
        if status is not None:
            stmt = stmt.where(flow_runs.c.status == status)
        total = await self._count(stmt)
        page = stmt.order_by(flow_runs.c.created_at.desc(), flow_runs.c.id.desc()).limit(limit)
        return await self._records(rows.flow_run, page.offset(offset)), total

    async def update_run(
        self, run_id: str, values: dict[str, Any], sources: Sequence[str]
    ) -> FlowRunRecord | None:
        """Update a run whose status is in ``sources``."""
        stmt = (
            update(flow_runs)
            .where(flow_runs.c.id == run_id, flow_runs.c.status.in_(list(sources)))
            .values(**values)
            .returning(*flow_runs.c)
        )
        return await self._record(rows.flow_run, stmt)

    async def run_steps(
        self, run_id: str, step_id: str | None = None, item: int | None = None
    ) -> list[StepRecord]:
        """Every step row of a run (of ``step_id``, with ``item``)."""
        stmt = select(flow_steps).where(flow_steps.c.run_id == run_id)
        if step_id is not None:
            stmt = stmt.where(flow_steps.c.step_id == step_id)
        if item is not None:
            stmt = stmt.where(flow_steps.c.item == item)
        stmt = stmt.order_by(flow_steps.c.step_id, flow_steps.c.item)
        return await self._records(rows.flow_step, stmt)

    async def step_has_items_in(self, run_id: str, step_id: str, statuses: Sequence[str]) -> bool:
        """Whether an item of the step is in ``statuses`` (``ix_flow_steps_open`` answers)."""
        stmt = (
            select(flow_steps.c.id)
            .where(
                flow_steps.c.run_id == run_id,
                flow_steps.c.step_id == step_id,
                flow_steps.c.status.in_(list(statuses)),
                flow_steps.c.item >= 0,
            )
            .limit(1)
        )
        return await self._one(stmt) is not None

    async def insert_step(self, values: dict[str, Any]) -> bool:
        """Insert a step row unless its hand-off key exists."""
        stmt = (
            self.connector.insert(flow_steps)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["run_id", "step_id", "item"])
            .returning(flow_steps.c.id)
        )
        return await self._one(stmt) is not None

    async def insert_steps(self, values: Sequence[dict[str, Any]]) -> list[str]:
        """Insert step rows, :data:`INSERT_BATCH` a statement, unless their key exists."""
        inserted: list[str] = []
        for batch in _batches(values):
            stmt = (
                self.connector.insert(flow_steps)
                .values(batch)
                .on_conflict_do_nothing(index_elements=["run_id", "step_id", "item"])
                .returning(flow_steps.c.id)
            )
            inserted += [row["id"] for row in await self._all(stmt)]
        return inserted

    async def update_step(
        self, step_key: str, values: dict[str, Any], sources: Sequence[str]
    ) -> StepRecord | None:
        """Update a step row whose status is in ``sources``."""
        stmt = (
            update(flow_steps)
            .where(flow_steps.c.id == step_key, flow_steps.c.status.in_(list(sources)))
            .values(**values)
            .returning(*flow_steps.c)
        )
        return await self._record(rows.flow_step, stmt)

    async def update_run_steps(
        self, run_id: str, values: dict[str, Any], sources: Sequence[str]
    ) -> int:
        """Update the run's step rows whose status is in ``sources``."""
        stmt = (
            update(flow_steps)
            .where(flow_steps.c.run_id == run_id, flow_steps.c.status.in_(list(sources)))
            .values(**values)
            .returning(flow_steps.c.id)
        )
        return len(await self._all(stmt))

    async def insert_step_execution(self, values: dict[str, Any]) -> bool:
        """Insert a step execution unless its step key exists."""
        stmt = (
            self.connector.insert(executions)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=["flow_run_id", "step_id", "item", "step_attempt"]
            )
            .returning(executions.c.id)
        )
        return await self._one(stmt) is not None

    async def insert_step_executions(self, values: Sequence[dict[str, Any]]) -> list[str]:
        """Insert step executions, :data:`INSERT_BATCH` a statement, unless their key exists."""
        inserted: list[str] = []
        for batch in _batches(values):
            stmt = (
                self.connector.insert(executions)
                .values(batch)
                .on_conflict_do_nothing(
                    index_elements=["flow_run_id", "step_id", "item", "step_attempt"]
                )
                .returning(executions.c.id)
            )
            inserted += [row["id"] for row in await self._all(stmt)]
        return inserted

    async def cancel_step_executions(
        self, run_id: str, move: Move, values: dict[str, Any]
    ) -> list[str]:
        """Move the run's waiting executions to ``move.target``."""
        stmt = (
            update(executions)
            .where(
                executions.c.flow_run_id == run_id,
                executions.c.status.in_(list(move.sources)),
            )
            .values(status=move.target, **values)
            .returning(executions.c.id)
        )
        return [row["id"] for row in await self._all(stmt)]

    async def runs_with_due_waits(self, now: datetime, status: str, limit: int) -> list[str]:
        """Runs with a wait step past its deadline."""
        stmt = (
            select(flow_steps.c.run_id)
            .where(flow_steps.c.status == status, flow_steps.c.wait_until <= now)
            .distinct()
            .limit(limit)
        )
        return [row["run_id"] for row in await self._all(stmt)]

    async def flow_triggers(
        self, user_id: str, flow_ids: Sequence[str], transport: str
    ) -> list[Cue]:
        """The hidden cues of ``transport`` of the user's flows ``flow_ids``."""
        stmt = select(cues).where(
            cues.c.user_id == user_id,
            cues.c.flow_id.in_(list(flow_ids)),
            cues.c.transport == transport,
        )
        return await self._records(rows.cue, stmt)

    async def update_flow_trigger(self, cue_id: str, values: dict[str, Any]) -> Cue | None:
        """Set ``values`` on a flow's hidden cue."""
        stmt = (
            update(cues)
            .where(cues.c.id == cue_id, cues.c.flow_id.is_not(None))
            .values(**values)
            .returning(*cues.c)
        )
        return await self._record(rows.cue, stmt)

    async def delete_flow_trigger(self, cue_id: str) -> None:
        """Delete a flow's hidden cue and its executions."""
        await self.conn.execute(delete(executions).where(executions.c.cue_id == cue_id))
        await self.conn.execute(
            delete(cues).where(cues.c.id == cue_id, cues.c.flow_id.is_not(None))
        )
