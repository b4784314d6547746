"""The transport conformance suites: :class:`TransportConformance` for every transport and
:class:`PushTransportConformance` for transports the engine hands executions to."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from cueflow.plugins import transport_problem
from cueflow.push_attempts import delivery_of, record_attempt
from cueflow.records import DueDelivery
from cueflow.states import Event, move
from cueflow.testing.harness import (
    SCENARIO_TIMEOUT,
    EngineFixtures,
    fire,
    new_user,
    one_time_cue,
    only_execution,
)
from cueflow.transport import DeliveryResult, PushTransport, Transport

ReceivedIds = Callable[[], "list[str] | Awaitable[list[str]]"]


class TransportConformance(EngineFixtures):
    """Every test a transport plugin must pass; push transports use
    :class:`PushTransportConformance`, which adds delivery tests.

    Subclass it in a test module (the name must start with ``Test``) and provide the fixture
    ``transport_name``: the name the transport registers under. The suite takes the transport
    from an engine built the normal way (built-ins, installed entry points and
    ``cueflow_plugins``), so it tests the registration too. Optional fixtures: ``cue_fields``
    (the ``POST /v1/cues`` fields, besides ``name``, ``schedule`` and ``transport``, of a cue
    the transport accepts and can deliver), ``refused_cue_fields`` (fields of a cue its
    ``validate_cue`` refuses; ``None`` skips that test), ``cueflow_plugins``,
    ``cueflow_settings`` and ``store_url`` (a SQLite file by default). Needs pytest-asyncio, in
    either mode.
    """

    pytestmark = pytest.mark.asyncio

    pushes: bool = False
    """Whether this class runs the push delivery tests."""

    @pytest.fixture
    def transport_name(self) -> str:
        """The name of the transport under test; the plugin author overrides this fixture."""
        raise NotImplementedError("override the transport_name fixture")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        """Where the suite's engine keeps its data: a SQLite file per test."""
        return f"sqlite:///{tmp_path / 'conformance.db'}"

    @pytest.fixture
    def cue_fields(self) -> dict[str, Any]:
        """Fields of a cue the transport accepts and can deliver. Default: none."""
        return {}

    @pytest.fixture
    def refused_cue_fields(self) -> dict[str, Any] | None:
        """Fields of a cue the transport refuses; ``None`` (the default) skips that test."""
        return None

    @pytest.fixture
    def engine_plugins(self, cueflow_plugins: list[object], transport_name: str) -> list[object]:
        """The author's plugins. Depends on ``transport_name`` so that whatever that fixture
        sets up (an environment variable the plugin reads, say) happens before the engine is
        built."""
        return list(cueflow_plugins)

    @pytest_asyncio.fixture
    async def transport(self, engine: Engine, transport_name: str) -> AsyncIterator[Transport]:
        """The transport under test, as the engine registered it, started and then stopped."""
        found = engine.transports.get(transport_name)
        assert found is not None, (
            f"no plugin registered the transport {transport_name!r} "
            f"(registered: {sorted(engine.transports)}, plugins: {engine.plugins.names})"
        )
        await found.start(engine.services)
        try:
            yield found
        finally:
            await found.stop()

    async def test_the_transport_is_registered_under_its_name(
        self, transport: Transport, transport_name: str
    ) -> None:
        assert transport.name == transport_name
        assert transport_problem(transport) is None

    async def test_a_push_transport_runs_the_push_suite(self, transport: Transport) -> None:
        assert transport.pull or self.pushes, (
            f"{transport.name!r} is a push transport: subclass PushTransportConformance"
        )

    async def test_it_accepts_a_cue_it_can_deliver_and_its_changes(
        self, engine: Engine, transport: Transport, cue_fields: dict[str, Any]
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, transport.name, **cue_fields)
        assert cue.transport == transport.name
        stored = dataclasses.asdict(cue)  # a transport checks a cue's store values
        await transport.validate_cue(stored)  # raises to refuse
        await transport.validate_cue(stored, stored)
        assert (await engine.pause_cue(user, cue.id)).status == "paused"
        assert (await engine.resume_cue(user, cue.id)).status == "active"
        renamed = await engine.update_cue(user, cue.id, {"name": "renamed"})
        assert renamed.name == "renamed"

    async def test_it_refuses_a_cue_it_cannot_deliver(
        self,
        engine: Engine,
        transport: Transport,
        refused_cue_fields: dict[str, Any] | None,
    ) -> None:
        if refused_cue_fields is None:
            pytest.skip("no refused_cue_fields given: the transport accepts every cue")
        user = await new_user(engine)
        with pytest.raises(CueflowError) as refused:
            await one_time_cue(engine, user, transport.name, **refused_cue_fields)
        assert 400 <= refused.value.status < 500
        assert await engine.list_cues(user) == ([], 0)

    async def test_start_and_stop_can_be_repeated(
        self, engine: Engine, transport_name: str
    ) -> None:
        transport = engine.transports[transport_name]
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            await transport.stop()  # stopping what never started is harmless
            await engine.start()
            await engine.stop()
            await transport.stop()
            await engine.start()
            await engine.stop()

    async def test_a_pulled_execution_waits_for_a_worker_and_takes_its_outcome(
        self,
        engine: Engine,
        clock: FakeClock,
        transport: Transport,
        cue_fields: dict[str, Any],
    ) -> None:
        if not transport.pull:
            pytest.skip("a push transport is not claimed by workers")
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, transport.name, **cue_fields)
        assert await fire(engine, clock) == 1
        execution = await only_execution(engine, user, cue.id)
        assert [row.id for row in await engine.claimable(user)] == [execution.id]
        await engine.claim(user, "conformance-worker", execution.id)
        await engine.report_outcome(user, execution.id, {"success": True}, "conformance-worker")
        assert (await engine.get_execution(user, execution.id)).status == "success"


class PushTransportConformance(TransportConformance):
    """:class:`TransportConformance` plus the delivery tests of a push transport.

    Also provide ``received_execution_ids``: a callable (sync or async) returning the
    ``execution_id`` of every delivery the receiving end got so far, in any order, repeats
    included. Optional: ``failing_cue_fields``, fields of a cue that ``validate_cue`` accepts
    but whose delivery fails in an expected way (a refused connection, an error answer);
    ``None`` (the default) skips that test.
    """

    pushes = True

    @pytest.fixture
    def received_execution_ids(self) -> ReceivedIds:
        """How the suite sees what arrived; the plugin author overrides this fixture."""
        raise NotImplementedError("override the received_execution_ids fixture")

    @pytest.fixture
    def failing_cue_fields(self) -> dict[str, Any] | None:
        """Fields of a cue whose delivery fails; ``None`` (the default) skips that test."""
        return None

    async def test_it_declares_a_lease_and_an_async_deliver(self, transport: Transport) -> None:
        assert transport.pull is False
        assert inspect.iscoroutinefunction(getattr(transport, "deliver", None))
        assert getattr(transport, "lease_seconds", 0) > 0

    async def test_a_fired_execution_is_delivered_once_end_to_end(
        self,
        engine: Engine,
        clock: FakeClock,
        transport: Transport,
        cue_fields: dict[str, Any],
        received_execution_ids: ReceivedIds,
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, transport.name, **cue_fields)
        assert await fire(engine, clock) == 1
        assert await _deliver_due(engine) == 1
        assert await _deliver_due(engine) == 0
        execution = await only_execution(engine, user, cue.id)
        assert (execution.status, execution.attempts) == ("success", 1), execution
        assert (await _received(received_execution_ids)).count(execution.id) == 1

    async def test_several_due_executions_are_all_delivered(
        self,
        engine: Engine,
        clock: FakeClock,
        transport: Transport,
        cue_fields: dict[str, Any],
        received_execution_ids: ReceivedIds,
    ) -> None:
        user = await new_user(engine)
        for _ in range(5):
            await one_time_cue(engine, user, transport.name, **cue_fields)
        assert await fire(engine, clock) == 5
        assert await _deliver_due(engine) == 5
        page = await engine.list_executions(user)
        assert {row.status for row in page.rows} == {"success"}
        assert {row.id for row in page.rows} <= set(await _received(received_execution_ids))

    async def test_deliver_answers_with_a_delivery_result(
        self,
        engine: Engine,
        clock: FakeClock,
        transport: Transport,
        cue_fields: dict[str, Any],
        received_execution_ids: ReceivedIds,
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, transport.name, **cue_fields)
        run = await _claim_one(engine, clock, _push(transport))
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            result = await _push(transport).deliver(delivery_of(run, _push(transport)))
        assert isinstance(result, DeliveryResult)
        assert result.ok, result
        assert run.id in await _received(received_execution_ids)
        await record_attempt(engine.services, run, result)
        execution = await only_execution(engine, user, cue.id)
        assert (execution.status, execution.attempts) == ("success", 1)

    async def test_an_expected_failure_is_a_result_not_an_exception(
        self,
        engine: Engine,
        clock: FakeClock,
        transport: Transport,
        failing_cue_fields: dict[str, Any] | None,
    ) -> None:
        if failing_cue_fields is None:
            pytest.skip("no failing_cue_fields given")
        user = await new_user(engine)
        retry = {"max_attempts": 2, "backoff_minutes": [1]}
        cue = await one_time_cue(engine, user, transport.name, retry=retry, **failing_cue_fields)
        run = await _claim_one(engine, clock, _push(transport))
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            result = await _push(transport).deliver(delivery_of(run, _push(transport)))
        assert isinstance(result, DeliveryResult)
        assert result.ok is False
        assert isinstance(result.error, str) and result.error
        await record_attempt(engine.services, run, result)
        execution = await only_execution(engine, user, cue.id)
        assert (execution.status, execution.attempts) == ("retrying", 1)
        assert execution.error_message == result.error
        clock.advance(60)
        assert await _deliver_due(engine) == 1
        execution = await only_execution(engine, user, cue.id)
        assert (execution.status, execution.attempts) == ("failed", 2)


def _push(transport: Transport) -> PushTransport:
    assert not transport.pull
    return transport  # type: ignore[return-value]


async def _deliver_due(engine: Engine) -> int:
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        return await engine.deliver_due()


async def _received(received: ReceivedIds) -> list[str]:
    found = received()
    if inspect.isawaitable(found):
        found = await found
    return list(found)


async def _claim_one(engine: Engine, clock: FakeClock, transport: PushTransport) -> DueDelivery:
    """Fire the one due cue and claim its execution for delivery, as the dispatcher does."""
    assert await fire(engine, clock) == 1
    now = clock.now()
    values = {
        "lease_expires_at": now + timedelta(seconds=transport.lease_seconds),
        "last_attempt_at": now,
        "updated_at": now,
    }
    async with engine.store.tx() as tx:
        claimed = await tx.claim_deliveries(transport.name, move(Event.CLAIM), now, 1, values)
    assert len(claimed) == 1, claimed
    return claimed[0]
