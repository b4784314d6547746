"""Settings, read from environment variables (and a ``.env`` file) or given explicitly.

Variable names follow CueAPI's where CueAPI has one (``DATABASE_URL``,
``WORKER_CLAIM_TIMEOUT_SECONDS`` ...); cueflow's own knobs are prefixed ``CUEFLOW_``.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Everything an operator can set."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///cueflow.db", validation_alias=_env("DATABASE_URL"))
    """Store URL: ``sqlite:///path.db``, ``sqlite://`` (memory) or ``postgresql://...``."""
    host: str = Field("127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(8000, validation_alias=_env("PORT"))

    worker_claim_timeout_seconds: int = Field(
        900, ge=1, validation_alias=_env("WORKER_CLAIM_TIMEOUT_SECONDS")
    )
    """Lease length of a claim; each execution heartbeat restarts it."""
    worker_heartbeat_timeout_seconds: int = Field(
        180, ge=1, validation_alias=_env("WORKER_HEARTBEAT_TIMEOUT_SECONDS")
    )
    """A registered worker silent for longer is stale: its claims return to the queue."""
    worker_unclaimed_timeout_seconds: int = Field(
        900, ge=0, validation_alias=_env("WORKER_UNCLAIMED_TIMEOUT_SECONDS")
    )
    """A worker execution nobody claims within this long becomes ``missed`` (0 disables)."""

    scheduler_batch_size: int = Field(500, ge=1, validation_alias=_env("CUEFLOW_SCHEDULER_BATCH"))
    """Due cues fired per transaction."""
    misfire_grace_seconds: int = Field(
        60, ge=0, validation_alias=_env("CUEFLOW_MISFIRE_GRACE_SECONDS")
    )
    """A run later than this is a misfire and follows the cue's misfire policy."""
    catchup_limit: int = Field(100, ge=1, validation_alias=_env("CUEFLOW_CATCHUP_LIMIT"))
    """Most missed runs one cue replays under the ``fire_all`` policy; older ones are recorded
    as one ``missed`` execution."""
    sweep_interval_seconds: float = Field(
        1.0, gt=0, validation_alias=_env("CUEFLOW_SWEEP_INTERVAL_SECONDS")
    )
    """How often expired leases and unclaimed executions are swept."""
    auth_cache_seconds: float = Field(
        5.0, ge=0, validation_alias=_env("CUEFLOW_AUTH_CACHE_SECONDS")
    )
    """How long a verified API key is remembered in process."""
    plugins: str | None = Field(None, validation_alias=_env("CUEFLOW_PLUGINS"))
    """Comma-separated entry-point names to load (default: all installed)."""
    disable_plugins: str | None = Field(None, validation_alias=_env("CUEFLOW_DISABLE_PLUGINS"))
    """Comma-separated entry-point names never to load."""
    allow_register: bool = Field(True, validation_alias=_env("ALLOW_REGISTER"))
    """Whether ``POST /v1/auth/register`` is open."""
