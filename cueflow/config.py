"""Settings, read from environment variables (and a ``.env`` file) or given explicitly.

Variable names follow CueAPI's where CueAPI has one (``DATABASE_URL``,
``WORKER_CLAIM_TIMEOUT_SECONDS`` ...); cueflow's own knobs are prefixed ``CUEFLOW_``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Everything an operator can set."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///cueflow.db", validation_alias=_env("DATABASE_URL"))
    """Store URL: ``sqlite:///path.db``, ``sqlite://`` (memory) or ``postgresql://...``."""
    sqlite_lock_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("CUEFLOW_SQLITE_LOCK_TIMEOUT_SECONDS")
    )
    """SQLite: longest a unit of work waits for the database's write lock (held by another
    process, or queued behind this process's own work) before it fails with 503
    ``database_unavailable``. The wait never blocks the server."""
    host: str = Field("127.0.0.1", validation_alias=_env("HOST"))
    port: int = Field(8000, validation_alias=_env("PORT"))
    serve_workers: int = Field(1, ge=1, le=256, validation_alias=_env("CUEFLOW_WORKERS"))
    """``cueflow serve``: server processes on the one port, each a full node (PostgreSQL only;
    see "Several processes on one machine" in ``docs/deploy.md``)."""

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
    retention_days: float = Field(0.0, ge=0, validation_alias=_env("CUEFLOW_RETENTION_DAYS"))
    """History retention: executions that ended (``success``, ``failed``, ``missed``) and were
    last changed more than this many days ago are deleted in the background, with ended flow
    runs and alerts as old (see ``docs/operations.md``). 0 (the default): keep everything."""
    retention_interval_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("CUEFLOW_RETENTION_INTERVAL_SECONDS")
    )
    """How often the retention loop looks for history to delete (when ``retention_days`` is
    set)."""
    retention_batch: int = Field(
        1000, ge=1, le=100_000, validation_alias=_env("CUEFLOW_RETENTION_BATCH")
    )
    """Most rows one retention statement deletes; each batch is its own short transaction."""
    scheduler_recheck_seconds: float = Field(
        2.0, gt=0, validation_alias=_env("CUEFLOW_SCHEDULER_RECHECK_SECONDS")
    )
    """Longest the scheduler sleeps without looking at the database, whatever it knows of due
    cues: the bound on how late a cue fires when a change notice from another node was lost."""
    loop_stall_seconds: float = Field(
        60.0, gt=0, validation_alias=_env("CUEFLOW_LOOP_STALL_SECONDS")
    )
    """A background loop whose cycle makes no progress for this long is stalled: ``/health``
    names it and it is restarted (every database call has its own deadline, far shorter)."""
    database_statement_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("CUEFLOW_DATABASE_STATEMENT_TIMEOUT_SECONDS")
    )
    """Longest one database statement (and a pool checkout) may take on PostgreSQL; past it the
    connection is discarded and the work fails with 503 ``database_unavailable``."""
    database_connect_timeout_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("CUEFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS")
    )
    """Longest opening one PostgreSQL connection may take."""
    database_pool_size: int = Field(10, ge=1, validation_alias=_env("CUEFLOW_DATABASE_POOL_SIZE"))
    """PostgreSQL: connections this process keeps open in its pool."""
    database_max_overflow: int = Field(
        10, ge=0, validation_alias=_env("CUEFLOW_DATABASE_MAX_OVERFLOW")
    )
    """PostgreSQL: connections this process may open beyond the pool under load (closed when
    given back). A node holds at most pool size + overflow + 1 (its ``LISTEN`` connection)."""
    auth_cache_seconds: float = Field(
        5.0, ge=0, validation_alias=_env("CUEFLOW_AUTH_CACHE_SECONDS")
    )
    """How long a verified API key is remembered in process."""
    rate_limit_per_minute: int = Field(
        60_000, ge=0, validation_alias=_env("CUEFLOW_RATE_LIMIT_PER_MINUTE")
    )
    """Requests per sliding minute per API key and node (0 turns rate limiting off). The
    default leaves room for a busy worker fleet on one key."""
    rate_limit_anonymous_per_minute: int = Field(
        600, ge=1, validation_alias=_env("CUEFLOW_RATE_LIMIT_ANONYMOUS_PER_MINUTE")
    )
    """Requests per sliding minute per client address without an API key."""
    anonymous_in_flight: int = Field(
        64, ge=1, validation_alias=_env("CUEFLOW_MAX_ANONYMOUS_IN_FLIGHT")
    )
    """Most requests without a valid key (registration, the echo store, wrong keys) in progress
    at once on this node, bodies included; more are answered 429 at once. This bounds what
    keyless callers can make the server hold (at most this many bodies of up to 1 MiB)."""
    anonymous_in_flight_per_address: int = Field(
        16, ge=1, validation_alias=_env("CUEFLOW_MAX_ANONYMOUS_IN_FLIGHT_PER_ADDRESS")
    )
    """The same, per client address."""
    rate_limit_wait_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("CUEFLOW_RATE_LIMIT_WAIT_SECONDS")
    )
    """A request that holds the server this long costs one more request against the rate limit
    (per such period, charged when it ends): long-polls pay for their waiting."""
    forwarded_allow_ips: str = Field("", validation_alias=_env("CUEFLOW_FORWARDED_ALLOW_IPS"))
    """Comma-separated addresses (or networks, or ``*``) of reverse proxies whose
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed for the client address (rate
    limits, logs). Empty (the default): none; the peer's address is the client's."""
    max_waits_per_key: int = Field(100, ge=0, validation_alias=_env("CUEFLOW_MAX_WAITS_PER_KEY"))
    """Most long-polls (``claimable?wait=``, batch claims with ``wait``) one account may have
    waiting at once on this node; beyond it a long-poll is answered at once, as without
    ``wait``."""
    max_connections: int = Field(1000, ge=1, validation_alias=_env("CUEFLOW_MAX_CONNECTIONS"))
    """Most HTTP connections ``cueflow serve`` holds open (lowered to fit the process's file
    descriptor limit); at the cap, the connection idle the longest is closed for a new one."""
    max_connections_per_address: int = Field(
        256, ge=1, validation_alias=_env("CUEFLOW_MAX_CONNECTIONS_PER_ADDRESS")
    )
    """Most HTTP connections one client address may hold open (the proxies of
    ``CUEFLOW_FORWARDED_ALLOW_IPS`` are exempt); more are answered 503 and closed."""
    header_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("CUEFLOW_HEADER_TIMEOUT_SECONDS")
    )
    """A connection must complete a request's line and headers within this long of opening (or
    of its previous response), or it is closed."""
    body_timeout_seconds: float = Field(
        60.0, gt=0, validation_alias=_env("CUEFLOW_BODY_TIMEOUT_SECONDS")
    )
    """A request's body must arrive within this long of its headers, or the connection is
    closed."""
    keep_alive_seconds: int = Field(5, ge=1, validation_alias=_env("CUEFLOW_KEEP_ALIVE_SECONDS"))
    """An idle keep-alive connection is closed this long after its last response."""
    max_header_count: int = Field(100, ge=1, validation_alias=_env("CUEFLOW_MAX_HEADER_COUNT"))
    """Most headers one request may have (more: 431)."""
    max_header_bytes: int = Field(
        65_536, ge=1024, validation_alias=_env("CUEFLOW_MAX_HEADER_BYTES")
    )
    """Largest request line plus headers, in bytes (larger: 431)."""
    plugins: str | None = Field(None, validation_alias=_env("CUEFLOW_PLUGINS"))
    """Comma-separated plugin names (built-in or entry point) to load, besides the required
    built-ins (default: every built-in and every installed plugin)."""
    disable_plugins: str | None = Field(None, validation_alias=_env("CUEFLOW_DISABLE_PLUGINS"))
    """Comma-separated plugin names never to load; naming a required built-in (``sqlite``,
    ``worker``) stops start-up."""
    allow_register: bool = Field(True, validation_alias=_env("ALLOW_REGISTER"))
    """Whether ``POST /v1/auth/register`` is open. Set it to ``false`` on a server others can
    reach and create accounts with ``cueflow accounts create EMAIL``."""
    secret_key: SecretStr | None = Field(None, validation_alias=_env("CUEFLOW_SECRET_KEY"))
    """Comma-separated Fernet keys, newest first, that encrypt webhook signing secrets and
    callback headers at rest (new values use the first; any opens). Unset: they are stored in
    plaintext and the server logs a warning at start-up."""
    webhook_secret_overlap_seconds: int = Field(
        0, ge=0, le=604_800, validation_alias=_env("CUEFLOW_WEBHOOK_SECRET_OVERLAP_SECONDS")
    )
    """How long after a webhook secret rotation deliveries are signed with both the new and the
    previous secret (two ``v1=`` values in ``X-CueAPI-Signature``), unless the rotation request
    names its own ``overlap_seconds``. 0 (the default, as CueAPI): the old secret stops at once,
    and the header keeps the single value CueAPI's SDK verifier compares whole."""

    webhook_timeout_seconds: float = Field(
        30.0, gt=0, validation_alias=_env("WEBHOOK_TIMEOUT_SECONDS")
    )
    """Longest a webhook delivery attempt may take, from the DNS lookup to the end of the
    answer (a timeout is a failed attempt)."""
    delivery_concurrency: int = Field(
        50, ge=1, validation_alias=_env("WEBHOOK_CONCURRENCY_PER_WORKER")
    )
    """Most push deliveries (webhook calls) in flight at once in this process."""
    delivery_per_account_concurrency: int = Field(
        10, ge=0, validation_alias=_env("CUEFLOW_DELIVERY_PER_ACCOUNT_CONCURRENCY")
    )
    """Most push deliveries of one account in flight at once in this process (0: no cap), so
    one account's slow receivers cannot hold every slot of ``delivery_concurrency``."""
    delivery_per_host_concurrency: int = Field(
        20, ge=0, validation_alias=_env("CUEFLOW_DELIVERY_PER_HOST_CONCURRENCY")
    )
    """Most push deliveries to one destination (host and port of the URL) in flight at once in
    this process (0: no cap), so one slow destination cannot hold every slot either."""
    delivery_lease_margin_seconds: float = Field(
        30.0, ge=0, validation_alias=_env("CUEFLOW_DELIVERY_LEASE_MARGIN_SECONDS")
    )
    """Added to a push transport's timeout to make the lease of a delivery in flight; when a
    lease ends without a recorded result (the process died) the attempt counts as failed and
    the execution is retried."""
    delivery_poll_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("CUEFLOW_DELIVERY_POLL_SECONDS")
    )
    """Longest the delivery loop sleeps without being woken: the bound on how late it notices
    work another node left behind (its own executions and retries wake it on time)."""
    graceful_timeout_seconds: float = Field(
        20.0, ge=0, validation_alias=_env("CUEFLOW_GRACEFUL_TIMEOUT_SECONDS")
    )
    """On SIGTERM (or when an engine closes), longest push deliveries and in-process handlers
    in flight may take to finish; those still running then are cancelled and their executions
    go back to the queue (see "Shutdown and drain" in ``docs/operations.md``)."""
    drain_accept_seconds: float = Field(
        0.0, ge=0, le=300, validation_alias=_env("CUEFLOW_DRAIN_ACCEPT_SECONDS")
    )
    """On SIGTERM, the least time ``cueflow serve`` keeps accepting connections (``/status``
    answering 503 ``draining``, requests served as usual) before it stops listening, so a
    balancer's readiness check takes the node out of rotation first. Runs alongside the drain.
    0 (the default): stop listening as soon as the work in flight has ended."""
    retry_jitter_seconds: float = Field(
        0.0, ge=0, validation_alias=_env("CUEFLOW_RETRY_JITTER_SECONDS")
    )
    """Up to this many random seconds added to each retry wait, to spread retry bursts (0: the
    waits are exactly ``retry.backoff_minutes``)."""
    allow_private_webhooks: bool = Field(
        False, validation_alias=_env("CUEFLOW_ALLOW_PRIVATE_WEBHOOKS")
    )
    """Let webhook, ``on_failure`` and alert URLs reach loopback and private networks (local
    development and tests). Link-local and cloud metadata addresses stay blocked."""

    handler_timeout_seconds: int = Field(
        300, ge=1, validation_alias=_env("CUEFLOW_HANDLER_TIMEOUT_SECONDS")
    )
    """Longest an in-process handler may run; a cue's ``timeout_seconds`` may shorten it but not
    lengthen it. A run that takes longer is abandoned and counts as a failed attempt."""
    handler_concurrency: int = Field(8, ge=1, validation_alias=_env("CUEFLOW_HANDLER_CONCURRENCY"))
    """Most in-process handler runs at once in this process (sync handlers run in a thread pool
    of this size)."""
    pause_removed_schedules: bool = Field(
        False, validation_alias=_env("CUEFLOW_PAUSE_REMOVED_SCHEDULES")
    )
    """When the engine syncs the schedules declared in code (``@engine.cron``, ``every``,
    ``at``), pause each active cue that was declared in code and no longer is (of any
    account); cues made by hand are never touched. Off by default: a removed declaration leaves
    its cue as it is."""

    active_cue_limit: int = Field(0, ge=0, validation_alias=_env("CUEFLOW_ACTIVE_CUE_LIMIT"))
    """Most cues (active and paused) one account may have; creating one more answers 403
    ``cue_limit_exceeded``. 0 (the default, for self-hosting): unlimited."""
    monthly_execution_limit: int = Field(
        0, ge=0, validation_alias=_env("CUEFLOW_MONTHLY_EXECUTION_LIMIT")
    )
    """Most executions one account gets per calendar month (UTC); scheduled runs past it are
    recorded as ``missed``, a flow step that would pass it fails (type ``execution_limit``).
    Manual fires and replays are counted but never refused. 0 (the default, for
    self-hosting): unlimited."""
    flow_for_each_limit: int = Field(
        1000, ge=1, le=10_000, validation_alias=_env("CUEFLOW_FLOW_FOR_EACH_LIMIT")
    )
    """Most items a flow's ``for_each`` step fans out to; a longer array fails the step (type
    ``for_each``). The items' executions are created in the hand-off's transaction."""

    metrics_enabled: bool = Field(True, validation_alias=_env("CUEFLOW_METRICS_ENABLED"))
    """Serve ``GET /metrics`` (Prometheus format, no authentication) on the standalone server."""
    worker_fast_path: bool = Field(True, validation_alias=_env("CUEFLOW_WORKER_FAST_PATH"))
    """Serve the worker protocol's hot routes (claimable, claim, heartbeat, outcome and their
    batches) by the lean path in front of FastAPI (:mod:`cueflow.api.fastpath`; same answers,
    less CPU); ``false`` leaves every request to FastAPI."""
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("CUEFLOW_LOG_FORMAT"))
    """``cueflow serve``'s log lines: ``text`` (readable) or ``json`` (one object per line)."""
