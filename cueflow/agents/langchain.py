"""The agent tools as langchain-core tools, and :class:`CueflowToolkit`.

Each tool is a :class:`~langchain_core.tools.StructuredTool` that works sync (``invoke``, run
on the session's own event loop thread) and async (``ainvoke``) and answers with a JSON object
as text. The schema a model sees is :func:`~cueflow.agents.schemas.model_schema`'s, which also
passes OpenAI's strict function calling (``bind_tools(..., strict=True)``); the arguments are
checked by the pydantic models. A refusal (bad arguments, a claim another worker won, an unknown
id) comes back to the model as an error :class:`ToolMessage` (``handle_tool_error=True``), never
as an exception that ends the agent's loop; validation errors name the fields without echoing
their values. The tools work in any langchain-core tool loop:
:func:`cueflow.agents.loop.run_agent_worker`, LangGraph's ``create_react_agent``, langchain's
``create_agent`` or your own.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, BaseToolkit, StructuredTool, ToolException
from pydantic import ConfigDict, field_validator

from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.schemas import model_schema
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.agents.tools import TOOLS, ToolSpec, invoke, select_tools

if TYPE_CHECKING:
    from cueflow.authentication import Principal
    from cueflow.engine import Engine

TASK_TOOLS = ("report_outcome", "release_execution", "get_execution")
"""The tools an agent loop gives the model for the execution it works on."""
MAX_NAME = 64
"""Longest tool name providers accept (OpenAI, Anthropic): ``^[a-zA-Z0-9_-]{1,64}$``."""
_NAME = re.compile(r"^[a-zA-Z0-9_-]*$")


def langchain_tool(
    spec: ToolSpec, session: WorkerSession, *, only: str | None = None, name_prefix: str = ""
) -> StructuredTool:
    """``spec`` as a langchain-core tool acting through ``session`` (confined to execution
    ``only`` when given)."""

    async def run(**arguments: Any) -> str:
        try:
            result = await invoke(spec, session, arguments, only=only)
        except ToolFailure as exc:
            raise ToolException(str(exc)) from exc
        return json.dumps(result, ensure_ascii=False, default=str)

    def run_sync(**arguments: Any) -> str:
        return session.run_sync(run(**arguments))

    return StructuredTool.from_function(
        func=run_sync,
        coroutine=run,
        name=name_prefix + spec.name,
        description=spec.description,
        args_schema=model_schema(spec.args),
        handle_tool_error=True,
    )


class CueflowToolkit(BaseToolkit):
    """cueflow's agent tools for one worker session.

    ``get_tools()`` gives the worker tools; ``include_management`` adds cue management, and
    ``allow_destructive`` (with it) adds ``delete_cue``. Make one with :meth:`for_engine`
    (embedded engine) or :meth:`for_url` (any cueflow or CueAPI server). Leases are kept alive
    from the first claim on; use it as ``async with toolkit:`` (or call :meth:`close` when used
    synchronously) so that unfinished claims are given back at the end rather than left to
    run out. ``name_prefix`` is put before every tool name; with it a name must stay within
    :data:`MAX_NAME` characters.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session: WorkerSession
    include_management: bool = False
    allow_destructive: bool = False
    name_prefix: str = ""

    @field_validator("name_prefix")
    @classmethod
    def _short_names(cls, prefix: str) -> str:
        longest = max(len(spec.name) for spec in TOOLS)
        if not _NAME.match(prefix):
            raise ValueError("name_prefix may hold only letters, digits, '_' and '-'")
        if len(prefix) + longest > MAX_NAME:
            raise ValueError(
                f"name_prefix is too long: tool names would exceed {MAX_NAME} characters "
                f"(at most {MAX_NAME - longest} characters of prefix)"
            )
        return prefix

    @classmethod
    def for_engine(
        cls,
        engine: Engine,
        user: Principal,
        *,
        worker_id: str | None = None,
        task: str | None = None,
        max_claims: int = 1,
        **options: Any,
    ) -> CueflowToolkit:
        """Tools acting for ``user`` on an embedded engine (opened or started by the caller)."""
        client = EngineWorkerClient(engine, user, worker_id=worker_id)
        session = WorkerSession(client, task=task, max_claims=max_claims)
        return cls(session=session, **options)

    @classmethod
    def for_url(
        cls,
        base_url: str,
        api_key: str | None = None,
        *,
        worker_id: str | None = None,
        task: str | None = None,
        max_claims: int = 1,
        **options: Any,
    ) -> CueflowToolkit:
        """Tools acting over HTTP for the account of ``api_key`` (default: the environment's
        ``CUEFLOW_API_KEY``); the key stays in the HTTP client."""
        key = api_key or os.environ.get("CUEFLOW_API_KEY")
        if not key:
            raise ValueError("an API key is needed: pass api_key or set CUEFLOW_API_KEY")
        client = HttpWorkerClient(base_url, key, worker_id=worker_id)
        session = WorkerSession(client, task=task, max_claims=max_claims)
        return cls(session=session, **options)

    def get_tools(self) -> list[BaseTool]:
        """The selected tools."""
        specs = select_tools(
            include_management=self.include_management, allow_destructive=self.allow_destructive
        )
        return [langchain_tool(s, self.session, name_prefix=self.name_prefix) for s in specs]

    def task_tools(self, execution_id: str) -> list[BaseTool]:
        """``report_outcome``, ``release_execution`` and ``get_execution``, confined to
        ``execution_id``: what a model working on that one execution gets."""
        specs = [spec for spec in select_tools() if spec.name in TASK_TOOLS]
        return [
            langchain_tool(s, self.session, only=execution_id, name_prefix=self.name_prefix)
            for s in specs
        ]

    async def __aenter__(self) -> CueflowToolkit:
        await self.session.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.__aexit__(*exc)

    def close(self) -> None:
        """Give back unfinished claims when the tools were used synchronously."""
        self.session.close()
