"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from cueflow.sql.secret_box import box_of, open_without_key


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on the Python side, whatever the database keeps.

    SQLite has no time zones: values are stored as naive UTC text in a fixed format, so that
    string comparison orders them correctly. PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; naive values are taken as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType: Any = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL."""


class SealedText(TypeDecorator[str]):
    """A secret string, encrypted at rest when the engine has a key
    (:mod:`cueflow.sql.secret_box`); plaintext values stored before still read.

    Never compare such a column with a value in SQL: each sealing gives different bytes.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Seal with the newest key, when there is one."""
        box = box_of(dialect)
        if value is None or box is None:
            return value
        return box.seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """Open a sealed value (plaintext ones are returned as they are)."""
        if value is None:
            return None
        box = box_of(dialect)
        return box.open(value) if box is not None else open_without_key(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON object holding secrets (a cue's callback headers): with a key, a non-empty object
    is stored as one sealed JSON string; an empty one, or any object stored before the key was
    set, stays plain JSON and still reads."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """JSONB on PostgreSQL, as :data:`JSONType`."""
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Seal a non-empty object when the engine has a key."""
        box = box_of(dialect)
        if not value or box is None:
            return value
        return box.seal(json.dumps(value, sort_keys=True))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Open a sealed object (plain ones are returned as they are)."""
        if not isinstance(value, str):
            return value
        box = box_of(dialect)
        return json.loads(box.open(value) if box is not None else open_without_key(value))
