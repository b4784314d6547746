"""The storage seam: what the engine asks of a store, and nothing about how.

A store plugin registers a factory for URL schemes (see :mod:`cueflow.hookspecs`). The factory
returns a :class:`Store`; all reads and writes happen inside :meth:`Store.tx`, a unit of work
whose methods are plain data operations. Business rules (which status follows which, when a
lease is lost, how a schedule advances) stay in the engine: it hands the store ready-made values
and the state machine's allowed source statuses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cueflow.flow_store import FlowStoreTx
from cueflow.states import Move

if TYPE_CHECKING:
    from cueflow.pulse import Pulse

Row = Mapping[str, Any]

lock_wait_limit: ContextVar[float | None] = ContextVar("cueflow_lock_wait_limit", default=None)
"""At most this many seconds a unit of work opened in the current context waits for a database
lock another process holds before raising :class:`cueflow.errors.DatabaseBusy` (``None``: the
store's own limit). ``/health`` sets it so it can answer at once; a store whose waits are
bounded otherwise may ignore it."""


class Duplicate(Exception):
    """A unique constraint refused a write; ``constraint`` names which (``email``, ``name``)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


@dataclass
class ExecutionPage:
    """One page of executions plus the figures the list endpoint reports."""

    rows: list[Row]
    total: int
    oldest_claimed_at: datetime | None = None


@dataclass(frozen=True)
class ReportGate:
    """Which executions a report of the worker ``worker_id`` may land on: one in an ``open``
    status, one no worker holds, or one in a ``held`` status that ``worker_id`` holds. The use
    case decides the statuses (:func:`cueflow.outcomes.report_gate`); the store only applies
    them."""

    worker_id: str
    open: tuple[str, ...]
    held: tuple[str, ...]


@dataclass
class ExecutionFilter:
    """Filters of ``GET /v1/executions``; ``None`` means "any"."""

    cue_id: str | None = None
    flow_run_id: str | None = None
    step_id: str | None = None
    statuses: Sequence[str] | None = None
    worker_id: str | None = None
    outcome_state: str | None = None


@dataclass
class FirePlan:
    """What the engine decided for one due cue: new executions and the cue's next state."""

    executions: list[dict[str, Any]] = field(default_factory=list)
    cue_values: dict[str, Any] = field(default_factory=dict)
    cue_values_if_fired: dict[str, Any] = field(default_factory=dict)
    """Set on the cue only when at least one of ``executions`` was inserted (a fire key that
    already existed leaves the cue as it was)."""


class StoreTx(FlowStoreTx, Protocol):
    """One unit of work. Every method runs in the enclosing transaction."""

    # accounts
    async def insert_user(self, values: dict[str, Any]) -> None:
        """Insert a user; raise :class:`Duplicate` ``email`` or ``slug``."""

    async def user_by_key_hash(self, key_hash: str) -> Row | None:
        """The user whose API key hashes to ``key_hash``."""

    async def user_by_email(self, email: str) -> Row | None:
        """The user registered with ``email`` (exact match)."""

    async def get_user(self, user_id: str) -> Row | None:
        """One user by id."""

    async def update_user(
        self, user_id: str, values: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> Row | None:
        """Set ``values`` on a user if every column in ``expect`` has the given value (``None``
        means SQL NULL); return the updated row or ``None``."""

    # cues
    async def insert_cue(self, values: dict[str, Any]) -> None:
        """Insert a cue; raise :class:`Duplicate` ``name``."""

    async def get_cue(self, user_id: str, cue_id: str) -> Row | None:
        """One of the user's cues."""

    async def cue_name_taken(self, user_id: str, name: str) -> bool:
        """Whether the user has a cue called ``name``."""

    async def list_cues(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """A page of the user's cues, newest first, and the total."""

    async def update_cue(self, user_id: str, cue_id: str, values: dict[str, Any]) -> Row | None:
        """Set ``values`` on one of the user's cues; return it updated, or ``None``."""

    async def delete_cue(self, user_id: str, cue_id: str) -> bool:
        """Delete one of the user's cues with its executions; ``False`` if there was none."""

    async def earliest_next_run(self) -> datetime | None:
        """The soonest ``next_run`` of any active cue."""

    async def fire_due(
        self, now: datetime, limit: int, plan: Callable[[Row], FirePlan]
    ) -> tuple[int, list[Row]]:
        """Lock up to ``limit`` active cues with ``next_run <= now`` (skipping rows other nodes
        hold), apply ``plan`` to each, insert the planned executions (a fire key that exists
        already is skipped silently) and write the cue values. ``fired_count`` grows by the
        number of executions actually inserted. Returns the number of cues locked and the
        inserted executions."""

    # executions
    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution; ``False`` if its fire key exists already."""

    async def get_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions."""

    async def outcome_targets(self, user_id: str, execution_ids: Sequence[str]) -> list[Row]:
        """The user's executions among ``execution_ids``, in any order, each with its cue's
        ``cue_verification_mode`` and ``cue_schedule_type`` (``None`` when the cue is gone)."""

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A page of the user's executions, newest first."""

    async def cue_executions(
        self, user_id: str, cue_id: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """A page of one cue's executions, newest first, and their total."""

    async def claimable(
        self,
        user_id: str,
        transports: Sequence[str],
        statuses: Sequence[str],
        now: datetime,
        task: str | None,
        limit: int,
    ) -> list[Row]:
        """The user's executions waiting for a worker (due, in ``statuses``), oldest first, with
        their cue's ``cue_name``, ``task`` and ``payload``."""

    async def claim(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_id: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> Row | None:
        """Atomically move one due execution (``execution_id``, or the oldest) from
        ``move.sources`` to ``move.target`` and set ``values``; ``attempts`` grows by one.
        ``None`` when nothing matched (another claimer won)."""

    async def claim_many(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_ids: Sequence[str] | None,
        limit: int,
        task: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> list[Row]:
        """Like :meth:`claim` for several executions at once: the due ones among
        ``execution_ids``, or up to ``limit`` of the oldest (whose cue's ``task`` is ``task``
        when given). Each row has ``id``, ``cue_id``, ``scheduled_for``, ``attempts`` and the
        cue's ``cue_name``, ``task`` and ``payload``, oldest first; executions another claimer
        won are simply absent."""

    async def update_execution(
        self,
        execution_id: str,
        values: dict[str, Any],
        *,
        move: Move | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Row | None:
        """Set ``values`` on an execution if its status is in ``move.sources`` (then status
        becomes ``move.target``) and every column in ``expect`` has the given value (``None``
        means SQL NULL). Returns the updated row or ``None``."""

    async def record_outcomes(
        self,
        user_id: str,
        execution_ids: Sequence[str],
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
    ) -> list[Row]:
        """Write the same outcome on each of ``execution_ids`` once: only where none is
        recorded yet and, with ``gate``, where the gate lets its worker report. The status
        moves to ``move.target`` where it is in ``move.sources`` and stays otherwise. Returns
        the updated rows (absent: not written)."""

    async def expired_leases(
        self, now: datetime, stale_before: datetime, transports: Sequence[str], limit: int
    ) -> list[Row]:
        """Claimed executions whose lease ended, or whose registered worker's heartbeat and own
        last execution heartbeat (or claim) are both older than ``stale_before``; locked, with
        their ``user_id`` and their cue's
        ``cue_name``, ``retry_max_attempts``, ``retry_backoff_minutes``, ``schedule_type`` and
        ``on_failure``."""

    async def promote_retries(
        self, transports: Sequence[str], move: Move, now: datetime, values: dict[str, Any]
    ) -> int:
        """Move every execution of ``transports`` in ``move.sources`` whose ``next_retry`` is at
        or before ``now`` to ``move.target`` and set ``values``; returns how many moved."""

    async def due_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        per_account: int,
        tasks: Collection[str] | None = None,
        skip_accounts: Collection[str] = (),
    ) -> list[Row]:
        """Candidates for :meth:`claim_deliveries`, shared fairly between accounts: of the due
        executions (``scheduled_for <= now``) of ``transport`` in ``move.sources`` (with
        ``tasks``, only those whose cue's ``task`` is one of them) whose ``user_id`` is not in
        ``skip_accounts``, each account's ``per_account`` oldest, and of those at most
        ``limit``, taken round-robin (every account's oldest first, then every account's
        second ...). Rows other nodes hold are skipped; on a store that can, the rows returned
        stay locked until the transaction ends. Each row has ``id``, ``user_id``,
        ``scheduled_for`` and its cue's ``callback_url``. Nothing is changed."""

    async def claim_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        values: dict[str, Any],
        tasks: Collection[str] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[Row]:
        """Atomically move up to ``limit`` due executions (``scheduled_for <= now``) of
        ``transport`` from ``move.sources`` to ``move.target``, oldest first, skipping rows other
        nodes hold; with ``tasks``, only executions whose cue's ``task`` is one of them; with
        ``ids``, only those executions (typically chosen from :meth:`due_deliveries`).
        ``attempts`` grows by one, ``started_at`` becomes ``now`` when empty and ``values`` are
        set. Returns the claimed executions' ``id``, ``cue_id``, ``user_id``, ``scheduled_for``
        and ``attempts``, with their cue's ``cue_name``, ``task``, ``callback_url``,
        ``callback_method``, ``callback_headers``, ``payload``, ``retry_max_attempts``,
        ``retry_backoff_minutes``, ``schedule_type``, ``on_failure``, ``verification_mode`` and
        ``timeout_seconds`` and the owner's ``webhook_secret``."""

    async def next_delivery_due(
        self,
        transports: Sequence[str],
        tasks: Mapping[str, Collection[str]] | None = None,
        skip_accounts: Collection[str] = (),
    ) -> datetime | None:
        """The earliest time an execution of ``transports`` needs the dispatcher: a pending
        execution's ``scheduled_for``, a retrying one's ``next_retry`` or a delivering one's
        ``lease_expires_at``. For a transport named in ``tasks``, pending executions count only
        when their cue's ``task`` is among its tasks; pending executions of ``skip_accounts``
        do not count."""

    async def unserved_deliveries(
        self, transport: str, tasks: Collection[str], before: datetime, limit: int
    ) -> list[Row]:
        """Up to ``limit`` pending executions of ``transport`` due before ``before`` whose cue's
        ``task`` is not in ``tasks`` (or is empty) and whose ``error_message`` is empty, with
        their ``id`` and their cue's ``task``."""

    async def unclaimed(self, before: datetime, transports: Sequence[str], limit: int) -> list[Row]:
        """Pending executions of ``transports`` due and waiting since before ``before``, locked."""

    async def bump_cue(
        self,
        cue_id: str,
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
    ) -> None:
        """Add to a cue's ``run_count`` and set ``values`` (only when its status is in
        ``only_if_status``, if given)."""

    async def bump_cues(
        self,
        cue_ids: Sequence[str],
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
        finish: Move | None = None,
    ) -> None:
        """:meth:`bump_cue` on several cues at once; with ``finish``, a cue whose status is in
        ``finish.sources`` also moves to ``finish.target`` in the same statement (a one-time
        cue's run ended); the others keep their status."""

    # workers
    async def upsert_worker(
        self, user_id: str, worker_id: str, handlers: list[str] | None, now: datetime
    ) -> None:
        """Create or refresh a worker's heartbeat."""

    async def list_workers(self, user_id: str) -> list[Row]:
        """The user's workers, latest heartbeat first."""

    async def extend_worker_leases(
        self, user_id: str, worker_id: str, transports: Sequence[str], until: datetime
    ) -> int:
        """Move the lease end of every execution the worker holds to ``until``."""

    async def delete_worker(self, user_id: str, worker_id: str) -> bool:
        """Forget a worker; ``False`` if unknown."""

    async def count_live_workers(self, user_id: str, since: datetime) -> int:
        """Workers of the user with a heartbeat at or after ``since``."""

    # alerts
    async def insert_alert(self, values: dict[str, Any]) -> None:
        """Insert an alert."""

    async def list_alerts(
        self,
        user_id: str,
        alert_type: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Row], int]:
        """A page of the user's alerts (of ``alert_type``, created at or after ``since``),
        newest first, and the total."""

    async def notify_schedule_changed(self) -> None:
        """Tell other nodes that cue schedules changed (no-op for single-process stores)."""

    # account keys, plan limits and usage
    async def lock_user(self, user_id: str) -> Row | None:
        """One user by id, locked until the transaction ends (serialises an account's
        limit-checked writes across nodes)."""

    async def remember_rotated_key(self, key_hash: str, user_id: str, now: datetime) -> None:
        """Record that the API key hashing to ``key_hash`` was replaced at ``now``."""

    async def key_rotated_since(self, key_hash: str, since: datetime) -> bool:
        """Whether the key hashing to ``key_hash`` was replaced at or after ``since``."""

    async def forget_rotated_keys(self, before: datetime) -> None:
        """Drop the records of keys replaced before ``before``."""

    async def count_cues(self, user_id: str, statuses: Sequence[str]) -> int:
        """How many of the user's cues are in ``statuses``."""

    async def usage_counts(self, user_id: str, since: datetime) -> dict[str, int]:
        """The user's figures for a usage report: ``active_cues``, ``paused_cues``, and over
        executions created at or after ``since``: ``executions`` (not ``missed``),
        ``reported`` (outcomes), ``succeeded`` / ``failed`` (reported outcomes) and
        ``failed_unreported`` (no outcome, status ``failed`` or ``missed``)."""

    async def due_users_executions(self, now: datetime, since: datetime) -> dict[str, int]:
        """For each user owning an active cue due at ``now``: how many of their executions
        created at or after ``since`` are not ``missed`` (users with none are left out)."""

    # verification and outcome alerts
    async def lock_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions, locked until the transaction ends."""

    async def finished_runs(self, cue_id: str, limit: int) -> list[Row]:
        """The cue's latest executions that finished (``success``/``failed``) or have an
        outcome, newest first: their ``id``, ``status`` and ``outcome_success``."""

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

    # echo receiver and health
    async def put_echo(self, values: dict[str, Any]) -> None:
        """Store (or replace) the echo message of ``values["token"]``."""

    async def get_echo(self, token: str, now: datetime) -> Row | None:
        """The echo message stored under ``token`` unless it expired before ``now``."""

    async def forget_echoes(self, now: datetime) -> None:
        """Drop echo messages that expired before ``now``."""

    async def queue_counts(
        self, push: Sequence[str], pull: Sequence[str], stale_before: datetime
    ) -> dict[str, int]:
        """Queue depth over all users: ``pending_outbox`` (pending executions of ``push``
        transports), ``stale_executions`` (delivering, unchanged since before
        ``stale_before``), ``pending_retries`` (retrying or retry_ready) and
        ``pending_worker_claims`` (pending executions of ``pull`` transports)."""


class Store(Protocol):
    """A storage backend, created by a store plugin's factory."""

    name: str
    """The backend's name (``sqlite``, ``postgresql`` ...)."""

    async def open(self) -> None:
        """Connect and bring the schema up to date (apply migrations)."""

    async def close(self) -> None:
        """Release connections."""

    def tx(self) -> AbstractAsyncContextManager[StoreTx]:
        """A unit of work: commits on normal exit, rolls back on an exception. Raises
        :class:`cueflow.errors.DatabaseBusy` when a lock held elsewhere keeps it from starting
        (or committing) within the store's limit (see :data:`lock_wait_limit`)."""

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Call ``callback`` whenever another node reports a schedule change, until cancelled
        (the engine runs this as its ``listener`` loop). Keep a listening connection: when it
        is lost, reconnect with backoff and call ``callback`` once connected again (notices
        may have been missed meanwhile). Report on ``pulse``: ``busy()`` before connecting or
        checking that the connection is alive, ``idle()`` once that succeeded, so that a
        listener stuck on a dead connection is seen and restarted. A store with no other nodes
        to hear returns at once."""
