"""The execution and cue state machines (``cueflow/states.py``) as data, and the rule that every
status change goes through it: no other module writes an execution status, a cue status or a
schedule type as a string literal."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from cueflow.states import (
    CUE_INITIAL,
    CUE_TRANSITIONS,
    INITIAL,
    LIVE_CUE_STATUSES,
    TERMINAL,
    TRANSITIONS,
    CueEvent,
    CueStatus,
    Event,
    Move,
    ScheduleType,
    Status,
    can,
    move,
    one_time_cue_end,
)

ROOT = Path(__file__).resolve().parents[1]

EXPECTED: dict[str, tuple[set[str], str]] = {
    "claim": ({"pending", "retry_ready"}, "delivering"),
    "lease_expired": ({"delivering"}, "pending"),
    "lease_exhausted": ({"delivering"}, "failed"),
    "released": ({"delivering"}, "pending"),
    "succeeded": ({"pending", "delivering", "retry_ready", "missed"}, "success"),
    "failed": ({"pending", "delivering", "retry_ready", "missed"}, "failed"),
    "retry_scheduled": ({"delivering"}, "retrying"),
    "retry_due": ({"retrying"}, "retry_ready"),
    "unclaimed": ({"pending"}, "missed"),
    "cancelled": ({"pending", "retrying", "retry_ready"}, "failed"),
    "superseded": ({"pending", "delivering", "retrying", "retry_ready"}, "failed"),
}
"""The whole table, written out independently of the module."""

CONTRACT_STATUSES = {
    "pending",
    "delivering",
    "retrying",
    "retry_ready",
    "success",
    "failed",
    "missed",
}


def test_statuses_are_exactly_the_contract_vocabulary() -> None:
    assert {s.value for s in Status} == CONTRACT_STATUSES


def test_every_event_has_exactly_one_transition() -> None:
    assert {e.value for e in Event} == set(EXPECTED)
    assert set(TRANSITIONS) == set(Event)


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
def test_event_moves_from_its_sources_to_its_target(event: Event) -> None:
    sources, target = TRANSITIONS[event]
    expected_sources, expected_target = EXPECTED[event.value]
    assert {s.value for s in sources} == expected_sources
    assert target.value == expected_target
    assert all(isinstance(s, Status) for s in sources)
    assert isinstance(target, Status)


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
def test_move_returns_sorted_source_tuple_and_target_string(event: Event) -> None:
    found = move(event)
    assert isinstance(found, Move)
    assert isinstance(found.sources, tuple)
    assert list(found.sources) == sorted(found.sources)
    assert len(set(found.sources)) == len(found.sources)
    assert set(found.sources) == EXPECTED[event.value][0]
    assert all(isinstance(s, str) for s in found.sources)
    assert isinstance(found.target, str)
    assert found.target == EXPECTED[event.value][1]
    assert move(event) == found


def test_move_is_immutable() -> None:
    found = move(Event.CLAIM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.target = "success"  # type: ignore[misc]


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_can_agrees_with_the_table(status: Status, event: Event) -> None:
    assert can(status, event) is (status.value in EXPECTED[event.value][0])
    assert can(status.value, event) is can(status, event)


def test_terminal_statuses_are_success_failed_and_missed() -> None:
    assert {s.value for s in TERMINAL} == {"success", "failed", "missed"}


@pytest.mark.parametrize("status", sorted(TERMINAL), ids=str)
def test_terminal_status_cannot_be_claimed(status: Status) -> None:
    assert not can(status, Event.CLAIM)
    assert status.value not in move(Event.CLAIM).sources


@pytest.mark.parametrize("status", [Status.SUCCESS, Status.FAILED], ids=str)
def test_finished_execution_has_no_outgoing_transition(status: Status) -> None:
    assert [e for e in Event if can(status, e)] == []


def test_missed_execution_leaves_only_through_a_reported_outcome() -> None:
    assert {e for e in Event if can(Status.MISSED, e)} == {Event.SUCCEEDED, Event.FAILED}


def test_only_an_unclaimed_pending_execution_becomes_missed() -> None:
    into = [e for e, (_, target) in TRANSITIONS.items() if target == Status.MISSED]
    assert into == [Event.UNCLAIMED]
    assert move(Event.UNCLAIMED).sources == ("pending",)


def test_every_status_is_reachable_from_an_initial_status() -> None:
    assert {s.value for s in INITIAL} == {"pending", "missed"}
    reached = set(INITIAL)
    frontier = list(INITIAL)
    while frontier:
        current = frontier.pop()
        for sources, target in TRANSITIONS.values():
            if current in sources and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Status)


def test_every_status_that_is_not_terminal_has_a_way_out() -> None:
    for status in set(Status) - TERMINAL:
        assert any(can(status, e) for e in Event), status


def test_claim_is_the_only_way_into_delivering() -> None:
    into = [e for e, (_, target) in TRANSITIONS.items() if target == Status.DELIVERING]
    assert into == [Event.CLAIM]


# every status change goes through states.py ---------------------------------------------------

_EXECUTION_ONLY = "pending|delivering|retrying|retry_ready|success|missed"
"""Execution statuses that are not also cue statuses (``failed`` is both, so cue code may
write it)."""

STATUS_WRITES = [
    re.compile(rf"""["']status["']\s*:\s*["']({_EXECUTION_ONLY})["']"""),
    re.compile(rf"""\[\s*["']status["']\s*\]\s*=\s*["']({_EXECUTION_ONLY})["']"""),
    re.compile(rf"""\bstatus\s*=\s*["']({_EXECUTION_ONLY})["']"""),
]
"""A string-literal status written as a dict entry, an item assignment or a keyword."""


def status_writes(source: str) -> list[str]:
    """Lines of ``source`` that write an execution status as a string literal."""
    return [
        line.strip()
        for line in source.splitlines()
        if not line.lstrip().startswith("#") and any(p.search(line) for p in STATUS_WRITES)
    ]


def scanned_modules() -> list[Path]:
    """Python modules of cueflow and its built-in plugins, except the state machine itself,
    the SQL store (which turns a Move into SQL), the input schemas, the OpenAPI examples and the
    migrations."""
    exempt = {
        ROOT / "cueflow" / "states.py",
        ROOT / "cueflow" / "schemas.py",
        ROOT / "cueflow" / "schema_examples.py",  # the OpenAPI document's example answers
    }
    frozen = ROOT / "cueflow" / "migrations"  # history: a trigger's SQL names statuses as then
    found = []
    for base in (ROOT / "cueflow", ROOT / "plugins"):
        for path in sorted(base.rglob("*.py")):
            if path in exempt or {ROOT / "cueflow" / "sql", frozen} & set(path.parents):
                continue
            found.append(path)
    return found


@pytest.mark.parametrize(
    "line",
    [
        'values = {"status": "delivering", "attempts": 1}',
        "row['status'] = 'missed'",
        'stmt.values(status="success")',
        'update(x).values(status = "retry_ready")',
        '_execution(row, due, now, status="pending")',
    ],
)
def test_status_scanner_catches_literal_status_writes(line: str) -> None:
    assert status_writes(line) == [line]


@pytest.mark.parametrize(
    "line",
    [
        'if row.status == "pending":',
        'executions.c.status != "delivering"',
        '"status": Status.PENDING.value,',
        'values={"status": "failed", "last_run": now}',
        'values["status"] = "paused"',
        '# {"status": "delivering"} is what a claim writes',
    ],
)
def test_status_scanner_ignores_comparisons_enums_and_cue_statuses(line: str) -> None:
    assert status_writes(line) == []


def test_no_module_outside_the_state_machine_writes_an_execution_status_literal() -> None:
    modules = scanned_modules()
    assert ROOT / "cueflow" / "claims.py" in modules
    assert ROOT / "cueflow" / "scheduler.py" in modules
    assert len(modules) > 20
    offending = {
        str(path.relative_to(ROOT)): hits
        for path in modules
        if (hits := status_writes(path.read_text(encoding="utf-8")))
    }
    assert offending == {}, "status changes must go through cueflow.states.move()"


# cues -----------------------------------------------------------------------------------------

CUE_EXPECTED: dict[str, tuple[set[str], str]] = {
    "pause": ({"active", "paused", "completed", "failed"}, "paused"),
    "resume": ({"active", "paused", "completed", "failed"}, "active"),
    "complete": ({"active"}, "completed"),
    "fail": ({"active"}, "failed"),
    "pause_on_failure": ({"active"}, "paused"),
}
"""The cue table, written out independently of the module (contract: pause and resume work on
any cue, resuming a completed or failed one included; a run ends only an ``active`` cue)."""


def test_cue_statuses_and_schedule_types_are_exactly_the_contract_vocabulary() -> None:
    assert {s.value for s in CueStatus} == {"active", "paused", "completed", "failed"}
    assert {t.value for t in ScheduleType} == {"once", "recurring", "interval"}
    assert CUE_INITIAL == "active"
    assert {s.value for s in LIVE_CUE_STATUSES} == {"active", "paused"}


@pytest.mark.parametrize("event", list(CueEvent), ids=lambda e: e.value)
def test_cue_event_moves_from_its_sources_to_its_target(event: CueEvent) -> None:
    assert set(CUE_TRANSITIONS) == set(CueEvent)
    sources, target = CUE_EXPECTED[event.value]
    found = move(event)
    assert set(found.sources) == sources
    assert list(found.sources) == sorted(found.sources)
    assert found.target == target
    assert type(found.target) is str
    assert all(type(s) is str for s in found.sources)
    for status in CueStatus:
        assert can(status, event) is (status.value in sources)


def test_cue_move_can_be_narrowed_to_some_of_its_sources_only() -> None:
    assert move(CueEvent.PAUSE, only=[CueStatus.ACTIVE]) == Move(("active",), "paused")
    with pytest.raises(ValueError):
        move(CueEvent.FAIL, only=[CueStatus.PAUSED])


@pytest.mark.parametrize(
    ("schedule_type", "status", "expected"),
    [
        ("once", "success", CueEvent.COMPLETE),
        ("once", "failed", CueEvent.FAIL),
        ("once", "missed", CueEvent.FAIL),
        ("once", "pending", None),
        ("once", "delivering", None),
        ("once", "retrying", None),
        ("once", "retry_ready", None),
        ("recurring", "success", None),
        ("recurring", "failed", None),
        ("interval", "missed", None),
    ],
)
def test_a_one_time_cue_ends_with_its_run_and_only_then(
    schedule_type: str, status: str, expected: CueEvent | None
) -> None:
    assert one_time_cue_end(schedule_type, status) == expected


def test_an_ended_one_time_cue_is_completed_or_failed() -> None:
    assert move(CueEvent.COMPLETE).target == "completed"
    assert move(CueEvent.FAIL).target == "failed"


# no status or schedule type is written outside states.py --------------------------------------

VOCABULARY = frozenset(
    member.value for kind in (Status, CueStatus, ScheduleType) for member in kind
)
"""Every execution status, cue status and schedule type."""

OTHER_MEANINGS: dict[tuple[str, str], str] = {
    ("cueflow/agents/answers.py", "success"): "the outcome report's field name",
    ("cueflow/agents/loop.py", "failed"): "an agent run's result (succeeded, failed, released)",
    ("cueflow/agents/runs.py", "failed"): "an agent run's result (succeeded, failed, released)",
    ("cueflow/commands/handlers.py", "failed"): "a handler's error text when it printed none",
    ("cueflow/commands/executions.py", "failed"): "the CLI's label for a failure outcome",
    ("cueflow/commands/executions.py", "success"): "the CLI's label for a success outcome",
    ("cueflow/commands/daemon.py", "success"): "the outcome report's field name",
    ("cueflow/metrics.py", "success"): "a metric label: the outcome's field, a delivery's result",
    ("cueflow/workers.py", "active"): "a worker's liveness, its own vocabulary",
}
"""The words of :data:`VOCABULARY` that some modules use in another sense."""


def status_literals(source: str) -> list[tuple[int, str]]:
    """``(line, value)`` of each string constant in ``source`` that equals a status or schedule
    type, as code: not a docstring, a dict key, a key looked up (``row["failed"]``,
    ``.get("success")``, ``"success" in data``) or a piece of an f-string. ``Literal[...]``
    members count."""
    tree = ast.parse(source)
    keys: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            keys.add(id(node.value))  # a docstring
        elif isinstance(node, ast.Dict):
            keys.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript) and _name(node.value) != "Literal":
            keys.add(id(node.slice))
        elif isinstance(node, ast.Call) and _name(node.func) in {"get", "pop", "setdefault"}:
            keys.update(id(arg) for arg in node.args[:1])
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            keys.add(id(node.left))
        elif isinstance(node, ast.JoinedStr):
            keys.update(id(v) for v in node.values)
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in VOCABULARY
        and id(node) not in keys
    )


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def vocabulary_scanned_modules() -> list[Path]:
    """Every Python module of cueflow and its built-in plugins, the SQL layer included, except
    the state machine itself, the migrations (frozen history), ``cueflow/testing`` (the
    shipped conformance suites assert the wire's strings, as the tests do), and the wire's own
    data: the REST client's models (generated from the OpenAPI document) and the document's
    examples."""
    exempt = (ROOT / "cueflow" / "migrations", ROOT / "cueflow" / "testing")
    wire_data = {ROOT / "cueflow" / "client" / "models.py", ROOT / "cueflow" / "schema_examples.py"}
    return [
        path
        for base in (ROOT / "cueflow", ROOT / "plugins")
        for path in sorted(base.rglob("*.py"))
        if path != ROOT / "cueflow" / "states.py"
        and path not in wire_data
        and not any(d in path.parents for d in exempt)
    ]


@pytest.mark.parametrize(
    "source",
    [
        'if row.status == "pending":\n    pass',
        'values = {"status": "paused"}',
        'stmt.where(cues.c.status.in_(["active", "paused"]))',
        'finish = "completed" if once else None',
        'kind: Literal["once", "recurring"] = "once"',
        'bump(only_if_status=("active",))',
        'x = s.type == "interval"',
    ],
)
def test_vocabulary_scanner_catches_statuses_and_schedule_types_in_code(source: str) -> None:
    assert status_literals(source) != []


@pytest.mark.parametrize(
    "source",
    [
        '"""A one-time cue is "completed" when its run succeeded."""',
        'counts["failed"] + counts["missed"]',
        'usage = {"active": 3, "failed": 1}',
        'ok = data.get("success")',
        'found = "success" in data',
        "status = Status.PENDING.value",
        'message = f"{kind} failed"',
        '# values["status"] = "paused"',
        'error = "delivery failed"',
    ],
)
def test_vocabulary_scanner_ignores_docstrings_keys_and_other_text(source: str) -> None:
    assert status_literals(source) == []


def test_no_status_or_schedule_type_literal_outside_the_state_machine() -> None:
    modules = vocabulary_scanned_modules()
    assert ROOT / "cueflow" / "sql" / "execution_queries.py" in modules
    assert ROOT / "cueflow" / "cues.py" in modules
    assert len(modules) > 40
    offending = {
        f"{rel}:{line}": value
        for path in modules
        for line, value in status_literals(path.read_text(encoding="utf-8"))
        if (rel := path.relative_to(ROOT).as_posix(), value) not in OTHER_MEANINGS
    }
    assert offending == {}, "write statuses and schedule types through cueflow.states' enums"
