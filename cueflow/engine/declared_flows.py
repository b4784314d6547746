"""The public Python API of flows declared in code (methods of :class:`cueflow.engine.Engine`):
declare one (:meth:`DeclaredFlowMethods.flow`), store the declarations (when the engine starts),
start a run by the flow's name and wait for a run's end.

Storing is idempotent per account, so every start of every process may do it: a flow of the
name that is absent is created, one whose stored definition differs from the code's is updated
(runs already started keep theirs), and one that matches is left alone, without a write. Two
processes starting at once on one database both end with the one flow: the one that loses the
race to create it finds the other's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cueflow.accounts as accounts
import cueflow.flow_runs as flow_runs
import cueflow.flows as flows
from cueflow.authentication import Principal
from cueflow.engine.flow_declarations import Flow
from cueflow.engine.flow_results import FlowRun, flow_run, wait_for_end
from cueflow.errors import Conflict, NotFound, PluginError
from cueflow.flow_schemas import FlowCreate, FlowUpdate, RunCreate
from cueflow.records import FlowRecord
from cueflow.transport import HandlerHost

if TYPE_CHECKING:
    from cueflow.services import Services

_PAGE = 100


@dataclass
class DeclaredFlow:
    """A flow declared on this engine, with the account owning it and, once stored, its id."""

    flow: Flow
    owner: str | Principal
    """The owner's email (its account is created if there is none) or principal."""
    principal: Principal | None = None
    flow_id: str | None = None
    stored_revision: int = -1
    """The :attr:`Flow.revision` stored last (-1: not stored yet)."""


class DeclaredFlowMethods:
    """Flows declared in code, runs started by name, waits for a run's end."""

    services: Services
    declared_flows: dict[str, DeclaredFlow]

    def flow(
        self,
        name: str,
        *,
        owner: str | Principal,
        input_schema: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Flow:
        """Declare the flow ``name`` of the account ``owner`` (an email, whose account is made
        if there is none, as :meth:`cueflow.Engine.account` does; or a principal); add its steps
        with the :class:`cueflow.Flow` methods. The engine stores it when it starts (see
        :meth:`sync_flows`). A name is declared once per engine (``ValueError``)."""
        if name in self.declared_flows:
            raise ValueError(f"a flow named {name!r} is declared already")
        flow = Flow(
            name,
            add_handler=self._add_step_handler,
            description=description,
            input_schema=input_schema,
        )
        self.declared_flows[name] = DeclaredFlow(flow, owner)
        return flow

    async def sync_flows(self) -> list[FlowRecord]:
        """Store every declared flow: create it if its account has none of its name, update
        it if its definition changed, else leave it as it is (no write). The engine calls this
        when it starts; returns the stored flows. An invalid definition raises
        :class:`cueflow.flow_schemas.InvalidFlow` naming the step."""
        return [await self._sync(declared) for declared in self.declared_flows.values()]

    async def run_flow(
        self, name: str, input: Any = None, *, idempotency_key: str | None = None
    ) -> FlowRun:
        """Start a run of the declared flow ``name`` with ``input`` (checked against its
        ``input_schema``: 400 ``invalid_input``); with an ``idempotency_key`` that started a run
        already, that run. ``await run.result(timeout=...)`` waits for its end."""
        declared = self.declared_flows.get(name)
        if declared is None:
            raise NotFound(f"No flow named '{name}' is declared", code="flow_not_found")
        spec = RunCreate(input=input, idempotency_key=idempotency_key)
        try:
            return await self._start(declared, spec)
        except NotFound:  # deleted since it was stored (over REST): store it again
            declared.stored_revision = -1
            return await self._start(declared, spec)

    async def wait_for_flow_run(
        self, user: Principal, run_id: str, *, timeout: float | None = None
    ) -> FlowRun:
        """One of ``user``'s runs once it has ended (``succeeded``, ``failed`` or
        ``cancelled``), with each step's status and output; :class:`TimeoutError` when it is
        still open after ``timeout`` seconds (``None``: no limit), 404 for an unknown run."""
        waiter = functools.partial(self._wait, user)
        read = functools.partial(self._read_run, user, run_id, waiter)
        return await wait_for_end(read, self.services.signals.flow_runs, timeout)

    # ------------------------------------------------------------------------------------------
    def _add_step_handler(self, task: str, function: Any) -> None:
        transports = self.services.transports.values()
        host = next((t for t in transports if isinstance(t, HandlerHost)), None)
        if host is None:
            raise PluginError("no installed transport runs in-process steps (cueflow_inprocess)")
        host.add_handler(task, function)

    async def _wait(self, user: Principal, run_id: str, timeout: float | None) -> FlowRun:
        return await self.wait_for_flow_run(user, run_id, timeout=timeout)

    async def _read_run(self, user: Principal, run_id: str, waiter: Any) -> FlowRun:
        run, rows = await flow_runs.get_run(self.services, user, run_id)
        return flow_run(run, rows, waiter)

    async def _start(self, declared: DeclaredFlow, spec: RunCreate) -> FlowRun:
        if declared.stored_revision != declared.flow.revision:
            await self._sync(declared)
        assert declared.principal is not None and declared.flow_id is not None
        user = declared.principal
        run, rows, _ = await flow_runs.start_run(self.services, user, declared.flow_id, spec)
        return flow_run(run, rows, functools.partial(self._wait, user))

    async def _sync(self, declared: DeclaredFlow) -> FlowRecord:
        """Create, update or leave alone the stored flow of one declaration."""
        owner = declared.owner
        user = owner if isinstance(owner, Principal) else await self._account(owner)
        spec = declared.flow.definition()
        revision = declared.flow.revision
        stored = await self._find(user, spec.name)
        if stored is None:
            try:
                stored = await flows.create_flow(self.services, user, spec)
            except Conflict:  # another process created it meanwhile: compare with theirs
                stored = await self._find(user, spec.name)
                if stored is None:
                    raise
        if not _same(stored, spec):
            update = FlowUpdate(
                description=spec.description or "",
                input_schema=spec.input_schema or {},
                steps=spec.steps,
            )
            stored = await flows.update_flow(self.services, user, stored.id, update)
        declared.principal, declared.flow_id = user, stored.id
        declared.stored_revision = revision
        return stored

    async def _account(self, email: str) -> Principal:
        return await accounts.account(self.services, email)

    async def _find(self, user: Principal, name: str) -> FlowRecord | None:
        """The account's flow named ``name``."""
        offset = 0
        while True:
            page, total = await flows.list_flows(self.services, user, _PAGE, offset)
            found = next((flow for flow in page if flow.name == name), None)
            if found is not None or not page or offset + len(page) >= total:
                return found
            offset += len(page)


def _same(stored: FlowRecord, spec: FlowCreate) -> bool:
    """Whether ``stored`` is the definition ``spec`` (no description and an empty one, no input
    schema and the empty schema, which accepts anything, are the same)."""
    steps = [step.model_dump(mode="json") for step in spec.steps]
    return (
        stored.steps == steps
        and (stored.description or "") == (spec.description or "")
        and (stored.input_schema or {}) == (spec.input_schema or {})
    )
