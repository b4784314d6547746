"""The worker daemon's handlers: what ``--handler TASK=shell:COMMAND`` and
``--handler TASK=python:MODULE:FUNCTION`` run for an execution, and how what they do becomes
an outcome report.

* **shell**: ``COMMAND`` runs under ``/bin/sh -c`` with the payload as JSON on stdin and in
  ``CUEFLOW_PAYLOAD`` (plus ``CUEFLOW_EXECUTION_ID``, ``CUEFLOW_CUE_ID``, ``CUEFLOW_CUE_NAME``,
  ``CUEFLOW_TASK``, ``CUEFLOW_ATTEMPT``, ``CUEFLOW_SCHEDULED_FOR``; never the API key). Exit code
  0 is a success whose result is the tail of stdout; anything else a failure whose error is the
  exit code and the tail of stderr.
* **python**: ``FUNCTION(payload)`` (or ``FUNCTION(payload, context)`` when it takes two
  positional parameters; a coroutine function is run to completion). A return is a success: a
  string as is, other values as JSON; an exception is a failure with its text.
* **Evidence**: a success whose value (for shell: the last line of stdout) is a JSON object
  holding only the keys ``result``, ``summary``, ``external_id``, ``result_url``,
  ``result_ref``, ``result_type``, ``artifacts``, ``metadata`` is reported field by field.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OUTCOME_TEXT_LIMIT = 2000
"""Longest ``result``/``error`` the contract stores."""
EVIDENCE_KEYS = frozenset(
    {
        "result",
        "summary",
        "external_id",
        "result_url",
        "result_ref",
        "result_type",
        "artifacts",
        "metadata",
    }
)
_EVIDENCE_LIMITS = {"summary": 500, "external_id": 500, "result_ref": 500, "result_type": 100}
_HIDDEN_ENV = ("CUEFLOW_API_KEY",)

Report = dict[str, Any]
"""An outcome report: the body of ``POST /v1/executions/{id}/outcome``."""


class HandlerSpecError(ValueError):
    """A ``--handler`` value that cannot be used (bad form, module or function not found)."""


@dataclass(frozen=True)
class TaskContext:
    """What a handler may want to know besides the payload."""

    execution_id: str
    cue_id: str
    cue_name: str
    task: str | None
    scheduled_for: str
    attempt: int
    """Which claim of the execution this run is: 1 on the first."""

    @classmethod
    def of(cls, claimable: dict[str, Any]) -> TaskContext:
        """The context of an item of ``GET /v1/executions/claimable``."""
        return cls(
            execution_id=claimable["execution_id"],
            cue_id=claimable.get("cue_id", ""),
            cue_name=claimable.get("cue_name", ""),
            task=claimable.get("task"),
            scheduled_for=str(claimable.get("scheduled_for", "")),
            attempt=int(claimable.get("attempt") or 0) + 1,  # claims so far, this one included
        )


@dataclass
class Run:
    """One handler run in progress."""

    context: TaskContext
    cancelled: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None

    def cancel(self) -> None:
        """Abandon the run: its result will not be reported, and a shell command is stopped (a
        Python function cannot be interrupted)."""
        self.cancelled.set()
        self.kill()

    def kill(self) -> None:
        """Stop a shell command: its process group gets SIGTERM."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


def tail(text: str, limit: int = OUTCOME_TEXT_LIMIT) -> str:
    """The last ``limit`` characters of ``text``, stripped."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def success_report(value: Any) -> Report:
    """A success whose value is ``value`` (see the module docstring for evidence objects)."""
    if isinstance(value, dict) and value and set(value) <= EVIDENCE_KEYS:
        report: Report = {"success": True}
        for key, item in value.items():
            if key == "result" and not isinstance(item, str):
                item = json.dumps(item, ensure_ascii=False)
            if key in _EVIDENCE_LIMITS and isinstance(item, str):
                item = item[: _EVIDENCE_LIMITS[key]]
            report[key] = item
        if isinstance(report.get("result"), str):
            report["result"] = tail(report["result"])
        return report
    if value is None:
        return {"success": True}
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return {"success": True, "result": tail(text)}


def failure_report(error: str) -> Report:
    """A failure with ``error``."""
    return {"success": False, "error": tail(error) or "failed"}


class Handler:
    """A handler for one task; :meth:`run` turns a payload into an outcome report."""

    kind: str
    task: str
    target: str

    def run(self, payload: dict[str, Any], run: Run, timeout: float | None) -> Report:
        """Run for ``payload``; never raises: every failure is a failure report."""
        raise NotImplementedError

    def describe(self) -> str:
        """``TASK=kind:target`` as given."""
        return f"{self.task}={self.kind}:{self.target}"


class ShellHandler(Handler):
    """Runs a shell command per execution."""

    kind = "shell"

    def __init__(self, task: str, command: str) -> None:
        self.task, self.target = task, command

    def run(self, payload: dict[str, Any], run: Run, timeout: float | None) -> Report:
        """Run the command; exit code 0 is a success."""
        data = json.dumps(payload, ensure_ascii=False)
        context = run.context
        env = {k: v for k, v in os.environ.items() if k not in _HIDDEN_ENV}
        env.update(
            CUEFLOW_PAYLOAD=data,
            CUEFLOW_EXECUTION_ID=context.execution_id,
            CUEFLOW_CUE_ID=context.cue_id,
            CUEFLOW_CUE_NAME=context.cue_name,
            CUEFLOW_TASK=context.task or "",
            CUEFLOW_ATTEMPT=str(context.attempt),
            CUEFLOW_SCHEDULED_FOR=context.scheduled_for,
        )
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.target],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return failure_report(f"cannot start the command: {exc}")
        run.process = process
        try:
            out, err = process.communicate(data.encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            run.kill()
            process.communicate()
            return failure_report(f"timed out after {timeout:g} s")
        stdout = out.decode(errors="replace")
        stderr = err.decode(errors="replace")
        if process.returncode != 0:
            detail = tail(stderr) or tail(stdout)
            message = f"exit code {process.returncode}"
            return failure_report(f"{message}: {detail}" if detail else message)
        return _shell_success(stdout)


def _shell_success(stdout: str) -> Report:
    lines = stdout.rstrip().splitlines()
    if lines:
        try:
            last = json.loads(lines[-1])
        except ValueError:
            last = None
        if isinstance(last, dict) and last and set(last) <= EVIDENCE_KEYS:
            before = "\n".join(lines[:-1]).strip()
            return success_report({**({"result": before} if before else {}), **last})
    return success_report(tail(stdout) or None)


class PythonHandler(Handler):
    """Calls a Python function per execution."""

    kind = "python"

    def __init__(self, task: str, target: str) -> None:
        self.task, self.target = task, target
        self.function = _import_function(target)
        self.wants_context = _positional_count(self.function) >= 2

    def run(self, payload: dict[str, Any], run: Run, timeout: float | None) -> Report:
        """Call the function (in a helper thread when there is a timeout); a return is a
        success, an exception a failure."""
        if timeout is None:
            return self._call(payload, run.context)
        answer: list[Report] = []
        thread = threading.Thread(
            target=lambda: answer.append(self._call(payload, run.context)), daemon=True
        )
        thread.start()
        thread.join(timeout)
        if thread.is_alive():  # it cannot be stopped: it runs on, its result is dropped
            return failure_report(f"timed out after {timeout:g} s")
        return answer[0]

    def _call(self, payload: dict[str, Any], context: TaskContext) -> Report:
        args: tuple[Any, ...] = (payload, context) if self.wants_context else (payload,)
        try:
            value = self.function(*args)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        except Exception as exc:
            return failure_report(f"{type(exc).__name__}: {exc}")
        return success_report(value)


async def _await(value: Any) -> Any:
    return await value


def _import_function(target: str) -> Callable[..., Any]:
    module_name, sep, name = target.rpartition(":")
    if not sep or not module_name or not name:
        raise HandlerSpecError(f"python handler {target!r} must be module:function")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to the user resolve
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise HandlerSpecError(f"cannot import {module_name!r}: {exc}") from exc
    function: object = module
    for part in name.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise HandlerSpecError(f"{module_name!r} has no {name!r}")
    if not callable(function):
        raise HandlerSpecError(f"{target!r} is not callable")
    return function


def _positional_count(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in kinds and p.default is p.empty]
    return len(required)


def parse_handler(spec: str) -> Handler:
    """A handler from ``TASK=shell:COMMAND`` or ``TASK=python:MODULE:FUNCTION``."""
    task, sep, rest = spec.partition("=")
    kind, colon, target = rest.partition(":")
    if not sep or not task.strip() or not colon or not target.strip():
        raise HandlerSpecError(f"{spec!r} is not TASK=shell:COMMAND or TASK=python:MODULE:FUNCTION")
    if kind == "shell":
        return ShellHandler(task.strip(), target)
    if kind == "python":
        return PythonHandler(task.strip(), target.strip())
    raise HandlerSpecError(f"unknown handler kind {kind!r} in {spec!r} (shell or python)")
