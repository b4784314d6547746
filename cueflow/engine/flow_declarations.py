"""Flows declared in code: :class:`Flow`, made by :meth:`cueflow.Engine.flow`, collects steps,
and the engine stores the definition when it starts (``docs/flows.md``, "Flows in Python")::

    orders = engine.flow("orders", owner="shop@example.com",
                         input_schema={"type": "object", "required": ["order"]})

    @orders.step(output_schema={"type": "object", "required": ["receipt"]}, retry=Retry(3))
    async def charge(ctx: StepContext) -> dict[str, Any]:
        return {"receipt": await bank.charge(ctx.input["order"])}

    pack = orders.worker_step("pack", payload={"task": "pack"}, needs=[charge])
    orders.wait_step("approval", event="approved", timeout_seconds=86400, needs=[pack])

A step declared with :meth:`Flow.step` is an **in-process step**: the decorated function (async,
or sync: it then runs in the handler thread pool) receives a :class:`StepContext` and what it
returns, as JSON, is the step's output; an exception fails the attempt (retried per
``retry``, the next attempt seeing it as ``ctx.previous_failure``). Other steps are delivered as
any flow step: :meth:`Flow.worker_step` to workers (and agents) claiming over the API,
:meth:`Flow.webhook_step` to a URL, and :meth:`Flow.wait_step` waits for an event sent to the
run.

Each in-process step runs as the in-process handler named ``flow:<flow>/<step>``, registered
when the step is declared, so only processes that declared the flow run its steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from cueflow.engine.flow_results import StepFailure
from cueflow.flow_schemas import FlowCreate, StepIn
from cueflow.handler_context import HandlerContext
from cueflow.states import StepType, When

WhenRule = When | str
"""A step's ``when`` rule (a :class:`cueflow.states.When` or its value): run when every parent
succeeded (the default), when one failed (a compensation step) or always; checked when the
step is declared."""
StepRef = str | Callable[..., Any]
"""A step named by its id, or an in-process step by its decorated function."""
StepFunction = TypeVar("StepFunction", bound=Callable[["StepContext"], Any])
TASK_PREFIX = "flow:"
"""In-process steps run as handlers named ``flow:<flow name>/<step id>``."""


@dataclass(frozen=True, slots=True)
class Retry:
    """How often a step is tried and how long to wait between tries (the wire's ``retry``)."""

    max_attempts: int = 3
    """Attempts in all, the first one included (1 to 10)."""
    backoff_minutes: Sequence[int] = (1, 5, 15)
    """The wait after failed attempt *n* is ``backoff_minutes[n-1]`` (the last one once the
    list runs out); empty: retry at once."""


@dataclass(frozen=True, slots=True)
class StepContext:
    """What the function of an in-process step receives."""

    run_id: str
    flow_id: str
    step: str
    """The step's id."""
    input: Any
    """The run's input."""
    parents: dict[str, Any]
    """The output of each step this one ``needs``, by step id."""
    attempt: int
    """1 for the first attempt, then 2, 3 ... up to ``retry.max_attempts``."""
    previous_failure: StepFailure | None
    """Why the previous attempt failed (``None`` on the first): its ``reason``, ``type``
    (``output_contract`` when ``output_schema`` refused its ``output`` ...) and ``output``."""
    execution_id: str
    """The execution of this attempt: a key to make the step's effects idempotent."""
    item: Any = None
    """For a ``for_each`` step: the item this run handles."""
    item_index: int | None = None
    """For a ``for_each`` step: the item's index."""


class Flow:
    """A flow declared in code: its steps, added by the methods below; made by
    :meth:`cueflow.Engine.flow`, stored (created, or updated when it changed) when the engine
    starts."""

    def __init__(
        self,
        name: str,
        *,
        add_handler: Callable[[str, Callable[..., Any]], None],
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.input_schema = input_schema
        self._add_handler = add_handler
        self._steps: list[StepIn] = []
        self._functions: dict[int, str] = {}
        FlowCreate.model_validate(self._body([]) | {"steps": [{"id": "_"}]})  # name, schema

    @property
    def revision(self) -> int:
        """Changes each time a step is added (the engine stores the flow again)."""
        return len(self._steps)

    def definition(self) -> FlowCreate:
        """The flow as a ``POST /v1/flows`` body."""
        return FlowCreate.model_validate(self._body([s.model_dump() for s in self._steps]))

    def step(
        self,
        *,
        id: str | None = None,
        needs: Sequence[StepRef] = (),
        output_schema: dict[str, Any] | None = None,
        retry: Retry | None = None,
        when: WhenRule = When.SUCCESS,
        for_each: StepRef | None = None,
        timeout_seconds: int | None = None,
        priority: int | None = None,
        concurrency: Mapping[str, Any] | None = None,
        rate_limit: Mapping[str, Any] | None = None,
    ) -> Callable[[StepFunction], StepFunction]:
        """Decorator: an in-process step running the function, which receives a
        :class:`StepContext`; what it returns (JSON: dicts, lists, strings, numbers, booleans,
        ``None``) is the step's output, checked against ``output_schema`` when given; raising
        fails the attempt. ``id`` defaults to the function's name; ``needs`` and ``for_each``
        name steps declared before, by id or by function. ``timeout_seconds`` bounds one run
        (at most ``CUEFLOW_HANDLER_TIMEOUT_SECONDS``). ``priority``, ``concurrency``
        (``{"limit", "key"?}``) and ``rate_limit`` (``{"limit", "period_seconds", "key"?}``) are
        the step's run controls (``docs/run-controls.md``). Returns the function unchanged."""

        def declare(function: StepFunction) -> StepFunction:
            step_id = id if id is not None else function.__name__
            task = f"{TASK_PREFIX}{self.name}/{step_id}"
            self._add(
                step_id,
                transport="inprocess",
                payload={"task": task},
                needs=needs,
                output_schema=output_schema,
                retry=retry,
                when=when,
                for_each=for_each,
                timeout_seconds=timeout_seconds,
                **_controls(priority, concurrency, rate_limit),
            )
            self._add_handler(task, _runner(step_id, function))
            self._functions[_key(function)] = step_id
            return function

        return declare

    def worker_step(
        self,
        id: str,
        *,
        payload: Mapping[str, Any] | None = None,
        needs: Sequence[StepRef] = (),
        output_schema: dict[str, Any] | None = None,
        retry: Retry | None = None,
        when: WhenRule = When.SUCCESS,
        for_each: StepRef | None = None,
        transport: str = "worker",
        priority: int | None = None,
        concurrency: Mapping[str, Any] | None = None,
        rate_limit: Mapping[str, Any] | None = None,
    ) -> str:
        """A step for workers (the official CueAPI worker, an agent, any client of the worker
        API): its ``payload`` (``payload["task"]`` routes it) plus ``flow`` is what they claim,
        and the ``output`` of their outcome is the step's output. ``transport`` names another
        pull transport if one is installed; ``priority``, ``concurrency`` and ``rate_limit`` are
        its run controls, as for :meth:`step`. Returns ``id``, for ``needs``."""
        return self._add(
            id,
            transport=transport,
            payload=dict(payload or {}),
            needs=needs,
            output_schema=output_schema,
            retry=retry,
            when=when,
            for_each=for_each,
            **_controls(priority, concurrency, rate_limit),
        )

    def webhook_step(
        self,
        id: str,
        *,
        url: str,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        needs: Sequence[StepRef] = (),
        output_schema: dict[str, Any] | None = None,
        retry: Retry | None = None,
        when: WhenRule = When.SUCCESS,
        for_each: StepRef | None = None,
        priority: int | None = None,
        concurrency: Mapping[str, Any] | None = None,
        rate_limit: Mapping[str, Any] | None = None,
    ) -> str:
        """A step sent to ``url`` as a signed webhook delivery (its ``payload`` plus
        ``flow``); the receiver's JSON answer is the step's output. ``priority``,
        ``concurrency`` and ``rate_limit`` are its run controls, as for :meth:`step`. Returns
        ``id``."""
        callback = {"url": url, "method": method, "headers": dict(headers or {})}
        return self._add(
            id,
            transport="webhook",
            payload=dict(payload or {}),
            callback=callback,
            needs=needs,
            output_schema=output_schema,
            retry=retry,
            when=when,
            for_each=for_each,
            **_controls(priority, concurrency, rate_limit),
        )

    def wait_step(
        self,
        id: str,
        *,
        event: str,
        timeout_seconds: int,
        needs: Sequence[StepRef] = (),
        when: WhenRule = When.SUCCESS,
    ) -> str:
        """A step that waits for the event ``event`` sent to the run
        (:meth:`cueflow.Engine.send_flow_event`), whose ``data`` is its output; it fails (type
        ``wait_timeout``) when none came within ``timeout_seconds``. Returns ``id``."""
        return self._add(
            id,
            type=StepType.WAIT,
            event=event,
            timeout_seconds=timeout_seconds,
            needs=needs,
            when=when,
        )

    # ------------------------------------------------------------------------------------------
    def _body(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "steps": steps,
        }

    def _add(
        self,
        step_id: str,
        *,
        needs: Sequence[StepRef],
        retry: Retry | None = None,
        for_each: StepRef | None = None,
        **fields: Any,
    ) -> str:
        """Check and keep one step; ``ValueError`` (a pydantic ``ValidationError`` for a field
        out of its bounds) names what is wrong."""
        if any(step.id == step_id for step in self._steps):
            raise ValueError(f"flow {self.name!r} has a step {step_id!r} already")
        values = {
            "id": step_id,
            "needs": [self._id_of(ref) for ref in needs],
            "for_each": None if for_each is None else self._id_of(for_each),
            "retry": None if retry is None else _retry(retry),
            **fields,
        }
        self._steps.append(StepIn.model_validate(values))
        return step_id

    def _id_of(self, ref: StepRef) -> str:
        if isinstance(ref, str):
            return ref
        step_id = self._functions.get(_key(ref))
        if step_id is None:
            name = getattr(ref, "__name__", repr(ref))
            raise ValueError(f"{name} is not a step of flow {self.name!r} (declare it first)")
        return step_id


def _key(function: Callable[..., Any]) -> int:
    return id(function)


def _controls(
    priority: int | None,
    concurrency: Mapping[str, Any] | None,
    rate_limit: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A step's run-control fields (``docs/run-controls.md``)."""
    return {
        "priority": priority,
        "concurrency": None if concurrency is None else dict(concurrency),
        "rate_limit": None if rate_limit is None else dict(rate_limit),
    }


def _retry(retry: Retry) -> dict[str, Any]:
    return {"max_attempts": retry.max_attempts, "backoff_minutes": list(retry.backoff_minutes)}


def _runner(step_id: str, function: Callable[[StepContext], Any]) -> Callable[..., Any]:
    """The in-process handler of a step: builds the context from the execution's payload and
    hands the function's return value on as JSON."""
    if inspect.iscoroutinefunction(function):

        async def run_async(payload: dict[str, Any], context: HandlerContext) -> Any:
            return _output(step_id, await function(_context(step_id, payload, context)))

        return run_async

    def run(payload: dict[str, Any], context: HandlerContext) -> Any:
        return _output(step_id, function(_context(step_id, payload, context)))

    return run


def _context(step_id: str, payload: dict[str, Any], context: HandlerContext) -> StepContext:
    flow = payload.get("flow")
    if not isinstance(flow, dict):
        raise ValueError(f"step {step_id!r} runs only as a step of its flow's runs")
    return StepContext(
        run_id=flow["run_id"],
        flow_id=flow["flow_id"],
        step=flow["step"],
        input=flow.get("input"),
        parents=dict(flow.get("parents") or {}),
        attempt=flow.get("attempt", context.attempt),
        previous_failure=StepFailure.of(flow.get("previous_failure")),
        execution_id=context.execution_id,
        item=flow.get("item"),
        item_index=flow.get("item_index"),
    )


def _output(step_id: str, value: Any) -> Any:
    """``value`` as JSON; a value JSON cannot hold fails the attempt, saying so."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as exc:  # orjson.JSONEncodeError
        raise TypeError(f"step {step_id!r} returned a value that is not JSON: {exc}") from exc
