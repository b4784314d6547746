"""Cue use cases: create, read, change, pause, resume, delete.

A flow step's hidden cue (``flow_id`` set, :mod:`cueflow.flows`) is no cue of its owner's: it is
not listed, ``GET`` answers 404 ``cue_not_found`` as for any other id, and changing, deleting,
firing or replaying it answers 409 ``flow_step_cue`` (:func:`refuse_step_cue`), since its runs
are the flow's steps and it changes and goes with its flow."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

import cueflow.ids as ids
import cueflow.quotas as quotas
import cueflow.run_controls as run_controls
import cueflow.schedule as schedule
from cueflow.authentication import Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.errors import CueValidationError as CueValidationError  # its former home
from cueflow.jsonvalues import has_huge_int, has_nul
from cueflow.records import Cue
from cueflow.schemas import CallbackPatch, CueCreate, CueUpdate, OnFailureIn, RetryIn, ScheduleIn
from cueflow.states import (
    CUE_INITIAL,
    TERMINAL,
    CueEvent,
    CueStatus,
    ScheduleType,
    Status,
    move,
)
from cueflow.store import Duplicate

if TYPE_CHECKING:
    from cueflow.services import Services

MAX_PAYLOAD_BYTES = 1_048_576
NO_WORKER_WARNING = "No active workers found. Start a cueapi-worker to process this cue."
DEFAULT_ON_FAILURE = {"email": True, "webhook": None, "pause": False}


def check_payload(payload: dict[str, Any]) -> None:
    """Refuse payloads over 1 MiB of JSON or holding NUL characters (contract 400s)."""
    if has_nul(payload):
        raise CueflowError(
            "Payload contains null bytes which are not supported", code="invalid_payload"
        )
    if has_huge_int(payload):
        raise CueflowError(
            "Payload contains an integer beyond 64 bits, which is not supported",
            code="invalid_payload",
        )
    try:
        size = len(orjson.dumps(payload))
    except orjson.JSONEncodeError as exc:  # nested past 255 levels, or lone surrogates
        message = f"Payload cannot be stored as JSON: {exc}"
        raise CueflowError(message, code="invalid_payload") from exc
    if size > MAX_PAYLOAD_BYTES:
        raise CueflowError("Payload must be under 1MB", code="invalid_payload_size")


def _duplicate_name(name: str) -> CueflowError:
    return CueflowError(
        f"A cue named '{name}' already exists", code="duplicate_cue_name", status=409
    )


def _task_of(payload: dict[str, Any]) -> str | None:
    task = payload.get("task")
    return task if isinstance(task, str) and len(task) <= 255 else None


def schedule_of_spec(spec: ScheduleIn, now: datetime) -> schedule.Schedule:
    """A requested schedule, validated (400 with the contract's schedule errors)."""
    return schedule.validate(
        schedule.Schedule(
            type=spec.type,
            timezone=spec.timezone,
            cron=spec.cron,
            at=spec.at,
            interval_seconds=spec.interval_seconds,
            fall_back=spec.fall_back or "both",
        ),
        now,
    )


def schedule_values(sched: schedule.Schedule, spec: ScheduleIn) -> dict[str, Any]:
    """The ``schedule_*`` columns of a cue with ``sched`` (as requested in ``spec``)."""
    kind = sched.type
    return {
        "schedule_type": kind,
        "schedule_cron": sched.cron if kind == ScheduleType.RECURRING else None,
        "schedule_at": sched.at if kind == ScheduleType.ONCE else None,
        "schedule_timezone": sched.timezone,
        "schedule_interval_seconds": sched.interval_seconds
        if kind == ScheduleType.INTERVAL
        else None,
        # as sent (null when omitted), so a cue is echoed the way it was created
        "schedule_fall_back": spec.fall_back if kind == ScheduleType.RECURRING else None,
    }


def schedule_of_cue(cue: Cue) -> schedule.Schedule:
    """The :class:`cueflow.schedule.Schedule` stored with ``cue``."""
    return schedule.Schedule(
        type=cue.schedule_type,
        timezone=cue.schedule_timezone,
        cron=cue.schedule_cron,
        at=cue.schedule_at,
        interval_seconds=cue.schedule_interval_seconds,
        fall_back="first" if cue.schedule_fall_back == "first" else "both",
    )


def first_run(sched: schedule.Schedule, now: datetime) -> datetime | None:
    """When a cue created or resumed at ``now`` fires first (past for an overdue one-time cue)."""
    if sched.type == ScheduleType.ONCE:
        return sched.at
    return schedule.next_fire_after(sched, now, anchor=now)


def control_values(spec: CueCreate | CueUpdate) -> dict[str, Any]:
    """The run-control columns ``spec`` sets (:mod:`cueflow.run_controls`): those it sends; a
    create fills in the defaults."""
    creating = isinstance(spec, CueCreate)
    values: dict[str, Any] = {}
    if spec.overlap_policy is not None or creating:
        values["overlap_policy"] = spec.overlap_policy or run_controls.Overlap.ALLOW.value
    if spec.priority is not None or creating:
        values["priority"] = spec.priority or 0
    if spec.concurrency is not None or creating:
        limit = spec.concurrency.limit if spec.concurrency else None
        values["concurrency_limit"] = limit
        values["concurrency_key"] = spec.concurrency.key if spec.concurrency and limit else None
    if spec.rate_limit is not None or creating:
        rate = spec.rate_limit
        values["rate_limit"] = rate.limit if rate else None
        values["rate_period_seconds"] = rate.period_seconds if rate else None
        values["rate_key"] = rate.key if rate and rate.limit else None
    if spec.required_payload_keys is not None or creating:
        values["required_payload_keys"] = list(spec.required_payload_keys or []) or None
    return values


async def create_cue(
    services: Services, user: Principal, spec: CueCreate, declaration: str | None = None
) -> tuple[Cue, str | None]:
    """Create a cue; returns it and the no-worker warning for pull transports. ``declaration``
    marks a cue declared in code (:mod:`cueflow.declared_cues`)."""
    now = services.clock.now()
    transport = services.transports.named(spec.transport)
    payload = spec.payload or {}
    try:
        check_payload(payload)
        run_controls.check_required_keys(spec.required_payload_keys, payload)
        sched = schedule_of_spec(spec.schedule, now)
    except CueflowError:
        # A taken name or a full account is reported before a bad schedule or payload; the
        # happy path checks both inside the one transaction that inserts the cue.
        await _check_room(services, user, spec.name)
        raise
    callback = spec.callback
    values: dict[str, Any] = {
        "id": ids.new_cue_id(),
        "user_id": user.user_id,
        "name": spec.name,
        "description": spec.description,
        "status": CUE_INITIAL.value,
        **schedule_values(sched, spec.schedule),
        "misfire_policy": spec.misfire_policy or "fire_once",
        "transport": spec.transport,
        "task": _task_of(payload),
        "callback_url": str(callback.url) if callback and callback.url else None,
        "callback_method": callback.method if callback else "POST",
        "callback_headers": (callback.headers or {}) if callback else {},
        "payload": payload,
        "retry_max_attempts": (spec.retry or RetryIn()).max_attempts,
        "retry_backoff_minutes": (spec.retry or RetryIn()).backoff_minutes,
        "on_failure": (spec.on_failure or OnFailureIn()).model_dump(),
        "verification_mode": spec.verification.mode if spec.verification else None,
        "timeout_seconds": spec.timeout_seconds,
        "next_run": first_run(sched, now),
        "run_count": 0,
        "fired_count": 0,
        "created_at": now,
        "updated_at": now,
        **control_values(spec),
        "declaration": declaration,
    }
    try:
        await transport.validate_cue(values)
    except CueflowError:
        await _check_room(services, user, spec.name)
        raise
    try:
        async with services.store.tx() as tx:
            if services.settings.active_cue_limit > 0 and await tx.cue_name_taken(
                user.user_id, spec.name
            ):
                raise _duplicate_name(spec.name)
            await quotas.check_cue_limit(services, tx, user.user_id, lock=True)
            await tx.insert_cue(values)
            cue = await tx.get_cue(user.user_id, values["id"])
            await tx.notify_schedule_changed()
            live = (
                await tx.count_live_workers(
                    user.user_id,
                    services.seconds_ago(services.settings.worker_heartbeat_timeout_seconds),
                )
                if transport.pull
                else 1
            )
    except Duplicate as dup:
        raise _duplicate_name(spec.name) from dup
    services.signals.wake()
    assert cue is not None
    return cue, (NO_WORKER_WARNING if live == 0 else None)


async def _check_room(services: Services, user: Principal, name: str) -> None:
    """409 when ``name`` is taken, 403 when the account has no room for another cue."""
    async with services.store.tx() as tx:
        if await tx.cue_name_taken(user.user_id, name):
            raise _duplicate_name(name)
        await quotas.check_cue_limit(services, tx, user.user_id)


async def get_cue(services: Services, user: Principal, cue_id: str) -> Cue:
    """One of the caller's cues, or 404 ``cue_not_found``."""
    async with services.store.tx() as tx:
        cue = await tx.get_cue(user.user_id, cue_id)
    if cue is None or cue.flow_id is not None:  # a flow step's hidden cue is no cue of theirs
        raise NotFound("Cue not found", code="cue_not_found")
    return cue


def refuse_step_cue(cue: Cue) -> None:
    """409 ``flow_step_cue`` when ``cue`` is a flow step's hidden cue (see the module)."""
    if cue.flow_id is not None:
        raise Conflict(
            f"This cue runs a step of flow {cue.flow_id}; it is run, changed and deleted only "
            "through its flow",
            code="flow_step_cue",
        )


async def _changeable(services: Services, user: Principal, cue_id: str) -> Cue:
    async with services.store.tx() as tx:
        cue = await tx.get_cue(user.user_id, cue_id)
    if cue is None:
        raise NotFound("Cue not found", code="cue_not_found")
    refuse_step_cue(cue)
    return cue


async def update_cue(
    services: Services,
    user: Principal,
    cue_id: str,
    patch: CueUpdate,
    also: Mapping[str, Any] | None = None,
) -> Cue:
    """Apply a PATCH: only the fields sent change; ``status`` pauses or resumes. ``also``:
    further columns set in the same write (the declared-cue sync's ``declaration``, and the
    fields a PATCH cannot clear)."""
    now = services.clock.now()
    current = await _changeable(services, user, cue_id)
    values: dict[str, Any] = {"updated_at": now, **(also or {})}
    sent = patch.model_fields_set
    if patch.name is not None:
        values["name"] = patch.name
    if "description" in sent and patch.description is not None:
        values["description"] = patch.description
    if patch.callback is not None:
        values.update(_callback_changes(patch.callback))
    if patch.payload is not None:
        check_payload(patch.payload)
        values["payload"] = patch.payload
        values["task"] = _task_of(patch.payload)
    if patch.retry is not None:
        values["retry_max_attempts"] = patch.retry.max_attempts
        values["retry_backoff_minutes"] = patch.retry.backoff_minutes
    if patch.verification is not None:
        values["verification_mode"] = patch.verification.mode
    if patch.on_failure is not None:
        values["on_failure"] = patch.on_failure.model_dump()
    if patch.misfire_policy is not None:
        values["misfire_policy"] = patch.misfire_policy
    if patch.timeout_seconds is not None:
        values["timeout_seconds"] = patch.timeout_seconds
    values.update(control_values(patch))
    run_controls.check_required_keys(
        values.get("required_payload_keys", current.required_payload_keys),
        values.get("payload", current.payload),
    )
    sched = schedule_of_cue(current)
    if patch.schedule is not None:
        sched = schedule_of_spec(patch.schedule, now)
        values.update(schedule_values(sched, patch.schedule))
        if current.status == CueStatus.ACTIVE:
            values["next_run"] = first_run(sched, now)
    # pause and resume start from any status: no condition on the update
    if patch.status == CueStatus.PAUSED:
        values["status"] = move(CueEvent.PAUSE).target
        values["next_run"] = None
    elif patch.status == CueStatus.ACTIVE:
        values["status"] = move(CueEvent.RESUME).target
        values["next_run"] = first_run(sched, now)
    stored = dataclasses.asdict(current)
    await services.transports.named(current.transport).validate_cue({**stored, **values}, stored)
    try:
        async with services.store.tx() as tx:
            cue = await tx.update_cue(user.user_id, cue_id, values)
            if cue is not None and run_controls.STAMPED_CUE_FIELDS.intersection(values):
                unfinished = [s.value for s in Status if s not in TERMINAL]
                await tx.restamp_executions(
                    cue.id, unfinished, run_controls.execution_controls(cue)
                )
            await tx.notify_schedule_changed()
    except Duplicate as dup:
        raise _duplicate_name(patch.name or "") from dup
    if cue is None:
        raise NotFound("Cue not found", code="cue_not_found")
    services.signals.wake()
    return cue


def _callback_changes(callback: CallbackPatch) -> dict[str, Any]:
    sent = callback.model_fields_set
    changes: dict[str, Any] = {}
    if "url" in sent:
        changes["callback_url"] = str(callback.url) if callback.url else None
    if "method" in sent and callback.method is not None:
        changes["callback_method"] = callback.method
    if "headers" in sent:
        changes["callback_headers"] = callback.headers or {}
    return changes


async def delete_cue(services: Services, user: Principal, cue_id: str) -> None:
    """Delete a cue with its executions, or 404."""
    async with services.store.tx() as tx:
        cue = await tx.get_cue(user.user_id, cue_id)
        if cue is not None:
            refuse_step_cue(cue)
        deleted = await tx.delete_cue(user.user_id, cue_id)
        await tx.notify_schedule_changed()
    if not deleted:
        raise NotFound("Cue not found", code="cue_not_found")
