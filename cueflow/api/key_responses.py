"""The answers' shapes of ``/v1/auth/keys``, for the OpenAPI document (as
:mod:`cueflow.api.responses` for the rest): descriptions only, never used to validate or
re-serialise an answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cueflow.schema_examples import with_example


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=with_example)


class ApiKey(_Wire):
    """A scoped API key: never its secret."""

    id: str
    name: str | None
    scope: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKey):
    """``POST /v1/auth/keys``: the key, with its secret shown this once."""

    api_key: str


class AccountKey(_Wire):
    """The account's own key: its prefix (it is always ``full``)."""

    prefix: str
    scope: str


class ApiKeys(_Wire):
    """``GET /v1/auth/keys``."""

    account_key: AccountKey
    keys: list[ApiKey]
