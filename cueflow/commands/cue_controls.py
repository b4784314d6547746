"""The run-control options of ``cueflow cues create`` and ``cueflow cues update``, the request
fields they become, and how ``cues show``/``cues list`` print a cue's controls.

The options (see ``docs/run-controls.md``)::

    --overlap-policy allow|skip|buffer_one|cancel_other
    --priority N                      -1000..1000, higher is claimed and delivered first
    --concurrency N[:KEY]             at most N runs at once (of every cue sharing KEY)
    --rate-limit N/PERIOD[:KEY]       at most N starts per PERIOD (60, 30s, 5m, 1h, 1d)
    --required-payload-key K          repeatable: keys every run's payload must carry

``cues update`` also takes ``--no-concurrency``, ``--no-rate-limit`` and
``--no-required-payload-keys``, which remove the limit or requirement.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import typer

from cueflow.run_controls import PRIORITY_MAX, PRIORITY_MIN

_LIMIT = re.compile(r"^(\d+)(?::(.+))?$")
_RATE = re.compile(r"^(\d+)/(\d+)([smhd]?)(?::(.+))?$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class OverlapPolicy(StrEnum):
    """A cue's ``overlap_policy``: what a fire does while an earlier run is not over."""

    allow = "allow"
    skip = "skip"
    buffer_one = "buffer_one"
    cancel_other = "cancel_other"


def parse_concurrency(value: str) -> dict[str, Any]:
    """``N`` or ``N:KEY`` as a cue's ``concurrency`` (``{"limit": N, "key": KEY}``)."""
    found = _LIMIT.match(value.strip())
    if not found or int(found.group(1)) == 0:
        raise typer.BadParameter(f"{value!r} is not a limit like 2 or 2:llm (N at least 1)")
    key = found.group(2)
    return {"limit": int(found.group(1)), **({"key": key} if key else {})}


def parse_rate_limit(value: str) -> dict[str, Any]:
    """``N/PERIOD`` or ``N/PERIOD:KEY`` (PERIOD: seconds, or 30s, 5m, 1h, 1d) as a cue's
    ``rate_limit`` (``{"limit": N, "period_seconds": ..., "key": KEY}``)."""
    found = _RATE.match(value.strip())
    if not found or int(found.group(1)) == 0 or int(found.group(2)) == 0:
        raise typer.BadParameter(
            f"{value!r} is not a rate limit like 60/60, 10/1m or 60/60:llm (N and PERIOD >= 1)"
        )
    limit, amount, unit, key = found.groups()
    period = int(amount) * _UNIT_SECONDS[unit]
    return {"limit": int(limit), "period_seconds": period, **({"key": key} if key else {})}


OverlapOption = Annotated[
    OverlapPolicy | None,
    typer.Option(help="What a fire does while an earlier run of the cue is not over."),
]
PriorityOption = Annotated[
    int | None,
    typer.Option(
        min=PRIORITY_MIN, max=PRIORITY_MAX, help="Higher is claimed and delivered first (0)."
    ),
]
ConcurrencyOption = Annotated[
    dict[str, Any] | None,
    typer.Option(
        parser=parse_concurrency,
        metavar="N[:KEY]",
        help="At most N runs at once, of this cue or of every cue sharing KEY.",
    ),
]
RateLimitOption = Annotated[
    dict[str, Any] | None,
    typer.Option(
        parser=parse_rate_limit,
        metavar="N/PERIOD[:KEY]",
        help="At most N runs started per PERIOD (60, 30s, 5m, 1h), per cue or shared KEY.",
    ),
]
RequiredKeysOption = Annotated[
    list[str] | None,
    typer.Option(
        "--required-payload-key",
        metavar="KEY",
        help="A key every run's payload must carry (repeatable).",
    ),
]


def controls_body(
    overlap_policy: OverlapPolicy | None,
    priority: int | None,
    concurrency: dict[str, Any] | None,
    rate_limit: dict[str, Any] | None,
    required_keys: list[str] | None,
) -> dict[str, Any]:
    """The request fields of the control options given (nothing for options left out)."""
    body: dict[str, Any] = {}
    if overlap_policy is not None:
        body["overlap_policy"] = overlap_policy.value
    if priority is not None:
        body["priority"] = priority
    if concurrency is not None:
        body["concurrency"] = concurrency
    if rate_limit is not None:
        body["rate_limit"] = rate_limit
    if required_keys:
        body["required_payload_keys"] = list(required_keys)
    return body


def clearing_body(
    body: dict[str, Any], no_concurrency: bool, no_rate_limit: bool, no_required_keys: bool
) -> dict[str, Any]:
    """``body`` with the limits the ``--no-...`` flags remove (``{}``/``[]`` on the wire); a
    flag given with the option it contradicts is a usage error."""
    cleared: dict[str, tuple[bool, Any]] = {
        "concurrency": (no_concurrency, {}),
        "rate_limit": (no_rate_limit, {}),
        "required_payload_keys": (no_required_keys, []),
    }
    for field, (flag, empty) in cleared.items():
        if not flag:
            continue
        option = "--" + field.replace("_", "-").removesuffix("s")
        if field in body:
            raise typer.BadParameter(
                f"{option} and --no-{field.replace('_', '-')} exclude each other",
                param_hint=option,
            )
        body[field] = empty
    return body


def concurrency_text(concurrency: dict[str, Any] | None) -> str | None:
    """``2 at once`` / ``2 at once (key llm)``; ``None`` without a limit."""
    if not concurrency or concurrency.get("limit") is None:
        return None
    key = concurrency.get("key")
    return f"{concurrency['limit']} at once" + (f" (key {key})" if key else "")


def rate_limit_text(rate: dict[str, Any] | None) -> str | None:
    """``60 per 60s`` / ``60 per 60s (key llm)``; ``None`` without a rate limit."""
    if not rate or rate.get("limit") is None:
        return None
    key = rate.get("key")
    return f"{rate['limit']} per {rate.get('period_seconds')}s" + (f" (key {key})" if key else "")


def control_fields(cue: dict[str, Any]) -> list[tuple[str, Any]]:
    """A cue's controls as ``cues show`` prints them."""
    return [
        ("overlap policy", cue.get("overlap_policy")),
        ("priority", cue.get("priority")),
        ("concurrency", concurrency_text(cue.get("concurrency"))),
        ("rate limit", rate_limit_text(cue.get("rate_limit"))),
        ("required keys", ", ".join(cue.get("required_payload_keys") or []) or None),
    ]


def controls_cell(cue: dict[str, Any]) -> str | None:
    """A cue's controls that differ from the defaults, in a few words (``cues list``):
    ``priority 5, 2 at once (key llm), 60 per 60s, skip``."""
    parts: list[str] = []
    if cue.get("priority"):
        parts.append(f"priority {cue['priority']}")
    for part in (concurrency_text(cue.get("concurrency")), rate_limit_text(cue.get("rate_limit"))):
        if part:
            parts.append(part)
    overlap = cue.get("overlap_policy")
    if overlap and overlap != OverlapPolicy.allow:
        parts.append(str(overlap))
    if cue.get("required_payload_keys"):
        parts.append("needs " + ",".join(cue["required_payload_keys"]))
    return ", ".join(parts) or None
