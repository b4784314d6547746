"""The flow parts of the state module as data: run and step statuses, the ``when`` rule and
how a run ends."""

from __future__ import annotations

import pytest

from cueflow.states import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STEP_TERMINAL,
    STEP_TRANSITIONS,
    RunStatus,
    StepStatus,
    When,
    run_end,
    step_should_run,
)

OK, FAILED, SKIPPED = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED


def test_run_and_step_statuses_are_the_wire_vocabulary() -> None:
    assert {s.value for s in RunStatus} == {
        "pending",
        "running",
        "waiting",
        "succeeded",
        "failed",
        "cancelled",
    }
    assert {s.value for s in StepStatus} == {
        "pending",
        "running",
        "waiting",
        "succeeded",
        "failed",
        "skipped",
        "cancelled",
    }


def test_an_ended_run_or_step_has_no_way_out() -> None:
    assert all(RUN_TRANSITIONS[s] == frozenset() for s in RUN_TERMINAL)
    assert all(STEP_TRANSITIONS[s] == frozenset() for s in STEP_TERMINAL)
    assert RunStatus.CANCELLED in RUN_TRANSITIONS[RunStatus.WAITING]


@pytest.mark.parametrize(
    ("when", "parents", "runs"),
    [
        (When.SUCCESS, [], True),
        (When.SUCCESS, [OK, OK], True),
        (When.SUCCESS, [OK, FAILED], False),
        (When.SUCCESS, [OK, SKIPPED], False),
        (When.FAILURE, [OK, FAILED], True),
        (When.FAILURE, [OK, SKIPPED], False),
        (When.ALWAYS, [FAILED, SKIPPED], True),
    ],
)
def test_a_step_runs_when_its_rule_holds_for_its_parents_ends(
    when: When, parents: list[StepStatus], runs: bool
) -> None:
    assert step_should_run(when, parents) is runs


def test_a_run_fails_when_a_step_failed_even_if_compensated() -> None:
    assert run_end([OK, SKIPPED]) == RunStatus.SUCCEEDED
    assert run_end([FAILED, OK]) == RunStatus.FAILED
    assert run_end([OK, StepStatus.RUNNING]) is None
