"""Schedules declared in code (methods of :class:`cueflow.engine.Engine`): a decorator puts a
cue on an in-process handler, and the engine stores it when it starts, as it stores the flows
declared in code (:mod:`cueflow.engine.declared_flows`)::

    @engine.cron("0 9 * * MON-FRI", timezone="America/New_York", owner="me@example.com")
    def morning_report(payload: dict[str, Any]) -> str: ...

    @engine.every("5m", owner="me@example.com", overlap_policy="skip")
    async def refresh(payload: dict[str, Any]) -> None: ...

    @engine.at(datetime(2030, 1, 1, tzinfo=UTC), owner="me@example.com", name="new-year")
    def greet(payload: dict[str, Any]) -> None: ...

Each registers the function as the in-process handler of the cue's ``payload["task"]`` (the
cue's name) and declares an ``inprocess`` cue named, by default, after the function's
qualified name. Storing is idempotent (:mod:`cueflow.declared_cues`): created when missing,
updated when the declaration changed, left alone (no write, ``next_run`` kept) when it did
not; with ``pause_removed_schedules`` set, a cue declared in code that no code declares any
more is paused. Cues made by hand are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Required, TypedDict, TypeVar, Unpack

import cueflow.accounts as accounts
import cueflow.declared_cues as declared_cues
from cueflow.authentication import Principal
from cueflow.engine.flow_declarations import Retry
from cueflow.errors import PluginError
from cueflow.records import Cue
from cueflow.schemas import CueCreate, MisfirePolicy, OverlapPolicy
from cueflow.states import ScheduleType
from cueflow.transport import HandlerHost

if TYPE_CHECKING:
    from cueflow.services import Services

F = TypeVar("F", bound=Callable[..., Any])

Interval = str | int | float | timedelta
"""How often an :meth:`~DeclaredScheduleMethods.every` schedule fires: ``"30s"``, ``"5m"``,
``"2h"``, ``"1d"``, a number of seconds or a :class:`~datetime.timedelta` (whole seconds, at
least one)."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"\s*(\d+)\s*([smhd])\s*")


class ScheduleOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`~DeclaredScheduleMethods.cron`,
    :meth:`~DeclaredScheduleMethods.every` and :meth:`~DeclaredScheduleMethods.at`: the cue's
    fields (``docs/run-controls.md`` for the run controls)."""

    owner: Required[str | Principal]
    """The account owning the cue: an email (the account is made if there is none, as for
    :meth:`cueflow.Engine.flow`) or a principal."""
    name: str
    """The cue's name, unique in its account, and its handler's task (default: the function's
    qualified name)."""
    payload: Mapping[str, Any]
    """What each run's handler receives (``task`` is set to the name)."""
    description: str
    misfire_policy: MisfirePolicy
    overlap_policy: OverlapPolicy
    priority: int
    concurrency: int | Mapping[str, Any]
    """At most this many runs at once, or ``{"limit": n, "key": "shared"}``."""
    rate_limit: Mapping[str, Any]
    """``{"limit": n, "period_seconds": s, "key"?: "shared"}``."""
    required_payload_keys: Sequence[str]
    retry: Retry
    timeout_seconds: int


@dataclass
class DeclaredSchedule:
    """A schedule declared on this engine: its cue as a ``POST /v1/cues`` body, and its owner."""

    spec: CueCreate
    owner: str | Principal


class DeclaredScheduleMethods:
    """Schedules declared in code on in-process handlers, stored when the engine starts."""

    services: Services
    declared_schedules: dict[str, DeclaredSchedule]

    def cron(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        fall_back: Literal["both", "first"] | None = None,
        **options: Unpack[ScheduleOptions],
    ) -> Callable[[F], F]:
        """Decorator: run the function on the cron ``expression`` in ``timezone`` (an IANA
        name); ``fall_back`` says whether a wall time the clocks repeat fires at ``both``
        occurrences (the default) or the ``first``. See the module for the options."""
        schedule = {"type": ScheduleType.RECURRING.value, "cron": expression, "timezone": timezone}
        return self._declare(schedule | {"fall_back": fall_back}, options)

    def every(self, interval: Interval, **options: Unpack[ScheduleOptions]) -> Callable[[F], F]:
        """Decorator: run the function every ``interval`` (``"30s"``, ``"5m"``, ``"2h"``,
        ``"1d"``, seconds, or a timedelta), the first time one interval after the cue is
        created."""
        return self._declare(
            {"type": ScheduleType.INTERVAL.value, "interval_seconds": interval_seconds(interval)},
            options,
        )

    def at(self, when: datetime, **options: Unpack[ScheduleOptions]) -> Callable[[F], F]:
        """Decorator: run the function once, at ``when`` (a naive datetime is UTC); it must be
        in the future when the cue is first stored."""
        return self._declare({"type": ScheduleType.ONCE.value, "at": when}, options)

    async def sync_schedules(self) -> list[Cue]:
        """Store every declared schedule (:mod:`cueflow.declared_cues`): create its cue if its
        account has none of its name, update it if the declaration changed, else leave it as
        it is (no write); with the ``pause_removed_schedules`` setting, pause the cues declared
        in code that are declared no more. The engine calls this when it starts; returns the
        declared schedules' cues. A cue of the name made by hand: 409 ``duplicate_cue_name``."""
        stored = []
        for declared in self.declared_schedules.values():
            owner = declared.owner
            user = owner if isinstance(owner, Principal) else await self._owner(owner)
            stored.append(await declared_cues.sync_cue(self.services, user, declared.spec))
        if self.services.settings.pause_removed_schedules:
            keep = {(cue.user_id, cue.name) for cue in stored}
            await declared_cues.pause_removed(self.services, keep)
        return stored

    # ------------------------------------------------------------------------------------------
    def _declare(self, schedule: dict[str, Any], options: ScheduleOptions) -> Callable[[F], F]:
        if "owner" not in options:
            raise TypeError("a schedule needs owner= (an account's email, or a principal)")

        def declare(function: F) -> F:
            name = options.get("name", function.__qualname__)
            if name in self.declared_schedules:
                raise ValueError(f"a schedule named {name!r} is declared already")
            spec = _spec(name, schedule, options)
            transports = self.services.transports.values()
            host = next((t for t in transports if isinstance(t, HandlerHost)), None)
            if host is None:
                raise PluginError("no installed transport runs in-process handlers")
            host.add_handler(name, function)
            self.declared_schedules[name] = DeclaredSchedule(spec, options["owner"])
            return function

        return declare

    async def _owner(self, email: str) -> Principal:
        return await accounts.account(self.services, email)


def interval_seconds(interval: Interval) -> int:
    """``interval`` (see :data:`Interval`) in seconds; ``ValueError`` if it is not whole
    seconds, at least one, or not understood."""
    if isinstance(interval, str):
        match = _INTERVAL.fullmatch(interval)
        if match is None:
            raise ValueError(f"interval {interval!r}: write a number and s, m, h or d ('5m')")
        value: float = int(match[1]) * _UNITS[match[2]]
    elif isinstance(interval, timedelta):
        value = interval.total_seconds()
    else:
        value = interval
    if value < 1 or value != int(value):
        raise ValueError(f"interval {interval!r}: a whole number of seconds, at least 1")
    return int(value)


def _spec(name: str, schedule: dict[str, Any], options: ScheduleOptions) -> CueCreate:
    """The declared cue as a ``POST /v1/cues`` body, validated now (a pydantic
    ``ValidationError`` names a field out of its bounds)."""
    payload = dict(options.get("payload", {}))
    if payload.get("task", name) != name:
        raise ValueError(f"schedule {name!r}: payload['task'] is set to the schedule's name")
    concurrency = options.get("concurrency")
    retry = options.get("retry")
    body = {
        "name": name,
        "description": options.get("description"),
        "transport": "inprocess",
        "schedule": schedule,
        "payload": payload | {"task": name},
        "misfire_policy": options.get("misfire_policy"),
        "overlap_policy": options.get("overlap_policy"),
        "priority": options.get("priority"),
        "concurrency": _mapping(
            {"limit": concurrency} if isinstance(concurrency, int) else concurrency
        ),
        "rate_limit": _mapping(options.get("rate_limit")),
        "required_payload_keys": options.get("required_payload_keys"),
        "retry": None if retry is None else _retry(retry),
        "timeout_seconds": options.get("timeout_seconds"),
    }
    return CueCreate.model_validate(body)


def _mapping(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _retry(retry: Retry) -> dict[str, Any]:
    return {"max_attempts": retry.max_attempts, "backoff_minutes": list(retry.backoff_minutes)}
