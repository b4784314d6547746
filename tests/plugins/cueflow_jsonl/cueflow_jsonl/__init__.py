"""cueflow-jsonl: a push transport a third party could publish, built on public cueflow API only.

A cue with ``"transport": "jsonl"`` is delivered, at each fire, as one JSON line appended to the
file named by the environment variable ``CUEFLOW_JSONL_FILE``: ``{"attempt", "cue_id",
"cue_name", "execution_id", "payload", "scheduled_for"}``. jsonl cues take no ``callback``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cueflow import hookimpl
from cueflow.errors import CueflowError
from cueflow.transport import Delivery, DeliveryResult, Transport, TransportServices

JSONL_FILE = "CUEFLOW_JSONL_FILE"


class JsonlTransport:
    """Appends each delivery to the file named by ``CUEFLOW_JSONL_FILE`` (read at each use)."""

    name = "jsonl"
    pull = False
    lease_seconds = 10.0

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @staticmethod
    def path() -> Path | None:
        """The file deliveries go to, or ``None`` when it is not configured."""
        value = os.environ.get(JSONL_FILE)
        return Path(value) if value else None

    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """Refuse cues with a callback URL, and every cue while no file is configured."""
        if cue.get("callback_url"):
            raise CueflowError(
                "body: the jsonl transport takes no callback.url",
                code="validation_error",
                status=422,
            )
        if self.path() is None:
            raise CueflowError(
                f"the jsonl transport is not configured: set {JSONL_FILE}",
                code="transport_unavailable",
                status=400,
            )

    async def start(self, services: TransportServices) -> None:
        """Nothing to open: the file is opened for each delivery."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Append one line; a file that cannot be written is a failed attempt."""
        path = self.path()
        if path is None:
            return DeliveryResult(ok=False, error=f"{JSONL_FILE} is not set")
        line = json.dumps(
            {
                "attempt": delivery.attempt,
                "cue_id": delivery.cue_id,
                "cue_name": delivery.cue_name,
                "execution_id": delivery.execution_id,
                "payload": delivery.payload,
                "scheduled_for": delivery.scheduled_for.isoformat(),
            },
            sort_keys=True,
        )
        try:
            async with self._lock:
                await asyncio.to_thread(_append, path, line + "\n")
        except OSError as exc:
            return DeliveryResult(ok=False, error=f"jsonl: cannot write {path}: {exc.strerror}")
        return DeliveryResult(ok=True)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


@hookimpl
def cueflow_register_transports(register: Callable[[Transport], None]) -> None:
    """Register the ``jsonl`` transport."""
    register(JsonlTransport())
