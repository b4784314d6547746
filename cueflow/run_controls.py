"""Run controls: how a cue's runs share time and capacity (cueflow extensions, additive cue
fields on the wire; see ``docs/run-controls.md``).

* ``overlap_policy`` (:class:`Overlap`): what a fire does while an earlier execution of the same
  cue is not over yet.
* ``priority``: claims, claimable lists and push deliveries take higher priority first, oldest
  first within one priority.
* ``concurrency`` (``concurrency_limit`` / ``concurrency_key``): at most ``limit`` executions of
  the cue, or of every cue of the account sharing the key, claimed or being delivered at once.
* ``rate_limit`` (``rate_limit`` / ``rate_period_seconds`` / ``rate_key``): at most ``limit``
  executions started in any ``period_seconds``, per cue or shared key.
* ``required_payload_keys``: keys every run's payload must carry.

Each execution is stamped with its cue's priority and limits when it is made
(:func:`execution_controls`), so the queue index orders by priority and a claim counts what a
key holds from the executions table alone; changing a cue's controls restamps its executions
that have not ended. A key shared by cues with different limits is held to the limit of the
execution being admitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cueflow.errors import CueflowError

if TYPE_CHECKING:
    from cueflow.records import Cue

PRIORITY_MIN = -1000
PRIORITY_MAX = 1000
MAX_CONCURRENCY_LIMIT = 10_000
MAX_RATE_LIMIT = 1_000_000
MAX_RATE_PERIOD_SECONDS = 86_400
"""The longest rate-limit window: starts older than this are never counted."""


class Overlap(StrEnum):
    """What a fire does while an earlier execution of the same cue is not terminal (Temporal's
    overlap policies)."""

    ALLOW = "allow"
    """Run alongside it (CueAPI's behaviour, the default)."""
    SKIP = "skip"
    """Record the fire as ``missed``, saying which execution it overlapped."""
    BUFFER_ONE = "buffer_one"
    """Keep at most one run waiting behind the one under way; further fires are ``missed``."""
    CANCEL_OTHER = "cancel_other"
    """Cancel the earlier runs (a worker holding one learns it at its next heartbeat or
    outcome) and run the new one."""


def limit_key(cue_id: str, key: str | None) -> str:
    """What a limit counts a cue's runs under: its shared ``key``, or the cue alone."""
    return f"key:{key}" if key else f"cue:{cue_id}"


def shown_key(stored: str | None) -> str | None:
    """The ``key`` a stamped limit key was made from (``None`` for a cue's own limit)."""
    if stored is None or not stored.startswith("key:"):
        return None
    return stored[4:]


def execution_controls(cue: Cue) -> dict[str, Any]:
    """The run-control columns an execution of ``cue`` is stamped with."""
    return stamp(
        cue.id,
        cue.priority,
        cue.concurrency_limit,
        cue.concurrency_key,
        cue.rate_limit,
        cue.rate_period_seconds,
        cue.rate_key,
    )


def stamp(
    cue_id: str,
    priority: int,
    concurrency_limit: int | None,
    concurrency_key: str | None,
    rate_limit: int | None,
    rate_period_seconds: int | None,
    rate_key: str | None,
) -> dict[str, Any]:
    """The run-control columns of an execution of cue ``cue_id`` with these controls."""
    limited = concurrency_limit is not None
    rated = rate_limit is not None and rate_period_seconds is not None
    return {
        "priority": priority,
        "concurrency_key": limit_key(cue_id, concurrency_key) if limited else None,
        "concurrency_limit": concurrency_limit if limited else None,
        "rate_key": limit_key(cue_id, rate_key) if rated else None,
        "rate_limit": rate_limit if rated else None,
        "rate_period_seconds": rate_period_seconds if rated else None,
    }


STAMPED_CUE_FIELDS = frozenset(
    {
        "priority",
        "concurrency_limit",
        "concurrency_key",
        "rate_limit",
        "rate_period_seconds",
        "rate_key",
    }
)
"""The cue columns whose change restamps the cue's unfinished executions."""


def missing_payload_keys(required: Iterable[str] | None, payload: Mapping[str, Any]) -> list[str]:
    """The ``required`` keys ``payload`` lacks, in the order they were required."""
    return [key for key in required or () if key not in payload]


def check_required_keys(required: Iterable[str] | None, payload: Mapping[str, Any]) -> None:
    """400 ``missing_payload_keys`` naming the required keys ``payload`` lacks."""
    missing = missing_payload_keys(required, payload)
    if missing:
        raise CueflowError(
            "Payload lacks required key(s): " + ", ".join(missing),
            code="missing_payload_keys",
        )


def concurrency_json(cue: Cue) -> dict[str, Any] | None:
    """A cue's ``concurrency`` on the wire (``None``: no limit)."""
    if cue.concurrency_limit is None:
        return None
    return {"limit": cue.concurrency_limit, "key": cue.concurrency_key}


def rate_limit_json(cue: Cue) -> dict[str, Any] | None:
    """A cue's ``rate_limit`` on the wire (``None``: no rate limit)."""
    if cue.rate_limit is None:
        return None
    return {
        "limit": cue.rate_limit,
        "period_seconds": cue.rate_period_seconds,
        "key": cue.rate_key,
    }
