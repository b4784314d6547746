"""The execution state machine (``cueflow/states.py``) as data, and the rule that every status
change goes through it: no other module writes an execution status as a string literal."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from cueflow.states import INITIAL, TERMINAL, TRANSITIONS, Event, Move, Status, can, move

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
    the SQL store (which turns a Move into SQL) and the input schemas."""
    exempt = {ROOT / "cueflow" / "states.py", ROOT / "cueflow" / "schemas.py"}
    found = []
    for base in (ROOT / "cueflow", ROOT / "plugins"):
        for path in sorted(base.rglob("*.py")):
            if path in exempt or (ROOT / "cueflow" / "sql") in path.parents:
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
        'if row["status"] == "pending":',
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
    assert ROOT / "cueflow" / "fire.py" in modules
    assert len(modules) > 20
    offending = {
        str(path.relative_to(ROOT)): hits
        for path in modules
        if (hits := status_writes(path.read_text(encoding="utf-8")))
    }
    assert offending == {}, "status changes must go through cueflow.states.move()"
