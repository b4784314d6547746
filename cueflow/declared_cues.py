"""Cues declared in code (``@engine.cron``, ``@engine.every``, ``@engine.at``): bring the stored
cue of one declaration in line with it, and pause those no code declares any more.

A cue made from a declaration carries the declaration's fingerprint (``declaration``, a hash
of its ``POST /v1/cues`` body); a cue made by hand carries none, and nothing here ever changes
it. Syncing is idempotent, so every start of every process may do it: a cue that is absent is
created, one whose fingerprint differs is updated to the declaration (its ``next_run`` kept
unless the schedule itself changed), one whose fingerprint matches is left alone, without a
write. Two processes syncing at once on one database both end with the one cue: the one that
loses the race to create it (the unique name per account) finds the other's.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

import cueflow.cues as cues
from cueflow.authentication import Principal
from cueflow.errors import Conflict, CueflowError
from cueflow.records import Cue
from cueflow.schemas import (
    ConcurrencyIn,
    CueCreate,
    CueUpdate,
    OnFailureIn,
    RateLimitIn,
    RetryIn,
    ScheduleIn,
)
from cueflow.states import CueStatus

if TYPE_CHECKING:
    from cueflow.services import Services

REMOVED = "removed"
"""The ``declaration`` of a cue a sync paused because no code declares it any more."""


def fingerprint(spec: CueCreate) -> str:
    """The fingerprint of a declaration: the SHA-256 of its body as canonical JSON."""
    body = orjson.dumps(spec.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


async def sync_cue(services: Services, user: Principal, spec: CueCreate) -> Cue:
    """The cue of the declaration ``spec`` of ``user``: created if the account has no cue of its
    name, updated if it was made from another declaration (resumed if a sync paused it as
    removed), else as it is. A cue of that name made by hand: 409 ``duplicate_cue_name``."""
    declaration = fingerprint(spec)
    current = await _named(services, user, spec.name)
    if current is None:
        try:
            cue, _ = await cues.create_cue(services, user, spec, declaration)
            return cue
        except CueflowError as exc:  # another process created it meanwhile: compare with theirs
            current = await _named(services, user, spec.name)
            if exc.code != "duplicate_cue_name" or current is None:
                raise
    if current.declaration is None:
        raise Conflict(
            f"A cue named '{spec.name}' already exists and was not declared in code: give the "
            "declaration another name (name=...), or rename or delete that cue",
            code="duplicate_cue_name",
        )
    if current.declaration == declaration:
        return current
    return await _replace(services, user, current, spec, declaration)


async def pause_removed(services: Services, declared: set[tuple[str, str]]) -> list[Cue]:
    """Pause every active cue declared in code whose ``(user_id, name)`` is not in
    ``declared`` and mark it :data:`REMOVED` (declaring it again resumes it); returns them."""
    async with services.store.tx() as tx:
        stored = await tx.declared_cues()
    paused = []
    for cue in stored:
        if (cue.user_id, cue.name) in declared or cue.status != CueStatus.ACTIVE:
            continue
        async with services.store.tx() as tx:
            account = await tx.get_user(cue.user_id)
        if account is None:
            continue
        owner = Principal(user_id=account.id, email=account.email, plan=account.plan)
        patch = CueUpdate(status=CueStatus.PAUSED.value)
        paused.append(
            await cues.update_cue(services, owner, cue.id, patch, {"declaration": REMOVED})
        )
    return paused


async def _named(services: Services, user: Principal, name: str) -> Cue | None:
    async with services.store.tx() as tx:
        return await tx.cue_named(user.user_id, name)


async def _replace(
    services: Services, user: Principal, current: Cue, spec: CueCreate, declaration: str
) -> Cue:
    """Update ``current`` to ``spec``: every field the declaration sets, those it leaves out back
    to their defaults; its schedule (and so ``next_run``) only if that changed."""
    same_schedule = _same_schedule(current, spec.schedule, services)
    patch = CueUpdate(
        schedule=None if same_schedule else spec.schedule,
        payload=spec.payload or {},
        retry=spec.retry or RetryIn(),
        on_failure=spec.on_failure or OnFailureIn(),
        misfire_policy=spec.misfire_policy or "fire_once",
        overlap_policy=spec.overlap_policy or "allow",
        priority=spec.priority or 0,
        concurrency=spec.concurrency or ConcurrencyIn(),
        rate_limit=spec.rate_limit or RateLimitIn(),
        required_payload_keys=spec.required_payload_keys or [],
        status=CueStatus.ACTIVE.value if current.declaration == REMOVED else None,
    )
    also: dict[str, Any] = {
        "declaration": declaration,
        "description": spec.description,  # a PATCH cannot clear these two
        "timeout_seconds": spec.timeout_seconds,
    }
    return await cues.update_cue(services, user, current.id, patch, also)


def _same_schedule(cue: Cue, spec: ScheduleIn, services: Services) -> bool:
    """Whether ``cue`` is stored with the schedule ``spec`` (an invalid ``spec``: no, so the
    update reports why)."""
    try:
        wanted = cues.schedule_values(cues.schedule_of_spec(spec, services.clock.now()), spec)
    except CueflowError:
        return False
    return all(getattr(cue, column) == value for column, value in wanted.items())
