"""The built-in stores and transports pass the public conformance suite (``cueflow.testing``),
exactly as a third-party plugin would run it against itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cueflow.engine import Engine
from cueflow.testing import PushTransportConformance, StoreConformance, TransportConformance
from cueflow.transport import Transport
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.webhook_support import Receiver

# stores ---------------------------------------------------------------------------------------


class TestSqliteFileStore(StoreConformance):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'store.db'}"


class TestSqliteMemoryStore(StoreConformance):
    store_is_shared = False

    @pytest.fixture
    def store_url(self) -> str:
        return "sqlite://"


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    async def store_url(self) -> AsyncIterator[str]:
        if not pg_available():
            pytest.skip("PostgreSQL is not reachable")
        url = await fresh_pg_database()
        try:
            yield url
        finally:
            await drop_pg_database(url)


# transports (each on SQLite and PostgreSQL; inprocess when installed) ----------------------------


class TestWorkerTransport(TransportConformance):
    @pytest.fixture
    def store_url(self, database_url: str) -> str:
        return database_url

    @pytest.fixture
    def transport_name(self) -> str:
        return "worker"


class TestWebhookTransport(PushTransportConformance):
    @pytest.fixture
    def store_url(self, database_url: str) -> str:
        return database_url

    @pytest.fixture
    def transport_name(self) -> str:
        return "webhook"

    @pytest.fixture
    def cueflow_settings(self) -> dict[str, Any]:
        return {"allow_private_webhooks": True}

    @pytest.fixture
    async def receiver(self) -> AsyncIterator[Receiver]:
        async with Receiver() as receiver:
            receiver.reply("/down", 503)
            yield receiver

    @pytest.fixture
    def cue_fields(self, receiver: Receiver) -> dict[str, Any]:
        return {"callback": {"url": receiver.url("/hook")}}

    @pytest.fixture
    def refused_cue_fields(self) -> dict[str, Any]:
        return {"callback": {"url": "http://169.254.169.254/latest/meta-data"}}

    @pytest.fixture
    def failing_cue_fields(self, receiver: Receiver) -> dict[str, Any]:
        return {"callback": {"url": receiver.url("/down")}}

    @pytest.fixture
    def received_execution_ids(self, receiver: Receiver) -> Any:
        return lambda: [r.headers["x-cueapi-execution-id"] for r in receiver.to("/hook")]


class TestInprocessTransport(PushTransportConformance):
    """Handlers are registered on the engine's transport, as ``engine.handler`` does."""

    @pytest.fixture
    def store_url(self, database_url: str) -> str:
        return database_url

    @pytest.fixture
    def transport_name(self) -> str:
        pytest.importorskip("cueflow_inprocess")
        return "inprocess"

    @pytest.fixture
    def ran(self) -> list[str]:
        return []

    @pytest.fixture
    def cue_fields(self, engine: Engine, transport: Transport, ran: list[str]) -> dict[str, Any]:
        async def record(payload: dict[str, Any], context: Any) -> str:
            ran.append(context.execution_id)
            return "recorded"

        def refuse(payload: dict[str, Any]) -> None:
            raise RuntimeError("the handler failed")

        engine.handler("conformance-record")(record)
        engine.handler("conformance-fail")(refuse)
        return {"payload": {"task": "conformance-record"}}

    @pytest.fixture
    def refused_cue_fields(self, cue_fields: dict[str, Any]) -> dict[str, Any]:
        return {"payload": {"task": "no-such-handler"}}

    @pytest.fixture
    def failing_cue_fields(self, cue_fields: dict[str, Any]) -> dict[str, Any]:
        return {"payload": {"task": "conformance-fail"}}

    @pytest.fixture
    def received_execution_ids(self, ran: list[str]) -> Any:
        return lambda: list(ran)
