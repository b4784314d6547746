"""Accounts: registering one, and the caller's own account (what ``/v1/auth/me`` shows and
changes, and the API key).

* ``register``: a new user and its ``cue_sk_`` key, the only time the key is shown in full;
  ``create_account``: the same for the operator (``cueflow accounts create``), whatever
  ``ALLOW_REGISTER`` says; ``account``: for code embedding the engine, by email, with no key
  shown.
* ``me``: email, plan, counts and limits (from the settings: ``0`` means unlimited), whether a
  webhook secret exists, the key's first 12 characters and the account's slug.
* ``update_me``: a new ``email`` (validated and normalised like registration; taken by another
  account: 409 ``duplicate_email``) and/or ``alert_webhook_url`` (checked by the notifier,
  the webhook transport's SSRF guard: 400 ``invalid_alert_webhook_url``; ``""`` clears it).
* ``regenerate_key``: a new ``cue_sk_`` key replaces the old one at once. The old key's hash is
  kept for :data:`cueflow.authentication.ROTATED_KEY_SECONDS` so that it answers 401 ``key_rotated``
  on every node (other nodes may still accept it for ``CUEFLOW_AUTH_CACHE_SECONDS``, 5 s by
  default, from their in-process cache).
* ``reveal_key``: cueflow keeps only a SHA-256 of API keys, never a recoverable copy, so the
  key cannot be shown again; the answer is CueAPI's "not available" shape with the prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

import cueflow.ids as ids
import cueflow.quotas as quotas
from cueflow.authentication import ROTATED_KEY_SECONDS, Authenticator, Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.jsonvalues import has_nul
from cueflow.records import Account, AccountSummary
from cueflow.schema_examples import with_example
from cueflow.schemas import RegisterRequest
from cueflow.store import Duplicate, StoreTx

if TYPE_CHECKING:
    from cueflow.services import Services

REVEAL_UNAVAILABLE = "Key not available. Regenerate to enable Reveal."


class AccountUpdate(BaseModel):
    """``PATCH /v1/auth/me``: unknown fields are ignored; ``null`` means "not sent"."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=with_example)

    email: EmailStr | None = None
    alert_webhook_url: str | None = Field(None, max_length=2048)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


async def _user(tx: StoreTx, user: Principal) -> Account:
    row = await tx.get_user(user.user_id)
    if row is None:
        raise NotFound("User not found", code="user_not_found")
    return row


async def me(services: Services, user: Principal) -> AccountSummary:
    """The caller's account with its counts and limits (``GET /v1/auth/me``)."""
    now = services.clock.now()
    settings = services.settings
    async with services.store.tx() as tx:
        row = await _user(tx, user)
        counts = await tx.usage_counts(user.user_id, quotas.month_start(now))
    return AccountSummary(
        email=row.email,
        plan=row.plan,
        active_cues=counts["active_cues"],
        active_cue_limit=settings.active_cue_limit,
        executions_this_month=counts["executions"],
        monthly_execution_limit=settings.monthly_execution_limit,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        has_webhook_secret=bool(row.webhook_secret),
        api_key_prefix=row.api_key_prefix,
        slug=row.slug,
    )


async def _check_alert_url(services: Services, url: str) -> None:
    """400 ``invalid_alert_webhook_url`` unless the notifier that sends alerts accepts the URL
    (without one, only the scheme and host are checked)."""
    notifier = services.transports.notifier
    if notifier is not None:
        try:
            await notifier.check_url(url)
        except ValueError as exc:
            message = str(exc) or "Invalid URL format"
            raise CueflowError(message, code="invalid_alert_webhook_url") from exc
        return
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest.split("/", 1)[0]:
        raise CueflowError("URL must use http:// or https://", code="invalid_alert_webhook_url")


async def update_me(
    services: Services, auth: Authenticator, user: Principal, update: AccountUpdate
) -> dict[str, str]:
    """Apply ``PATCH /v1/auth/me``; 422 ``no_fields`` when it sets nothing."""
    now = services.clock.now()
    values: dict[str, Any] = {}
    if update.email is not None:
        values["email"] = str(update.email)
    if update.alert_webhook_url is not None:
        url = update.alert_webhook_url
        if url:
            await _check_alert_url(services, url)
        values["alert_webhook_url"] = url or None
    if not values:
        raise CueflowError("No fields to update", code="no_fields", status=422)
    try:
        async with services.store.tx() as tx:
            if await tx.update_user(user.user_id, {**values, "updated_at": now}) is None:
                raise NotFound("User not found", code="user_not_found")
    except Duplicate as dup:
        raise Conflict("Email already registered", code="duplicate_email") from dup
    auth.forget()
    return {"updated_at": now.isoformat()}


async def regenerate_key(services: Services, auth: Authenticator, user: Principal) -> str:
    """Replace the caller's API key; returns the new one (the only time it is shown)."""
    key = ids.new_api_key()
    now = services.clock.now()
    async with services.store.tx() as tx:
        row = await tx.lock_user(user.user_id)
        if row is None:
            raise NotFound("User not found", code="user_not_found")
        values = {"api_key_hash": ids.hash_api_key(key), "api_key_prefix": key[:12]}
        await tx.update_user(user.user_id, {**values, "updated_at": now})
        await tx.remember_rotated_key(row.api_key_hash, user.user_id, now)
        await tx.forget_rotated_keys(services.seconds_ago(ROTATED_KEY_SECONDS))
    auth.forget()
    return key


async def reveal_key(services: Services, user: Principal) -> dict[str, Any]:
    """The body of ``GET /v1/auth/key``: never the key itself (only its hash is stored)."""
    async with services.store.tx() as tx:
        row = await _user(tx, user)
    return {"api_key": None, "prefix": row.api_key_prefix, "message": REVEAL_UNAVAILABLE}


async def register(services: Services, request: RegisterRequest) -> dict[str, str]:
    """Create a user; the only time the API key is ever returned in full."""
    if not services.settings.allow_register:
        raise NotFound("Not found", code="not_found")
    email = str(request.email)
    key = ids.new_api_key()
    await _insert_user(services, email, key)
    return {"api_key": key, "email": email}


def _normalised_email(email: str) -> str:
    """``email`` validated and normalised as registration does (422 ``validation_error``)."""
    try:
        return str(RegisterRequest(email=email).email)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise CueflowError(f"email: {message}", code="validation_error", status=422) from exc


async def create_account(services: Services, email: str) -> dict[str, str]:
    """Create a user as an operator does (``ALLOW_REGISTER`` does not apply): the answer of
    ``register``, the only time the key is shown. 409 ``duplicate_email`` if taken."""
    email = _normalised_email(email)
    key = ids.new_api_key()
    await _insert_user(services, email, key)
    return {"api_key": key, "email": email}


async def account(services: Services, email: str) -> Principal:
    """The user registered with ``email``, created first if there is none (a 422
    ``validation_error`` for an invalid address). For code embedding the engine: no API key is
    returned or logged, and ``ALLOW_REGISTER`` does not apply. A user created here gets a key
    nobody knows; ``register`` makes one whose key REST clients use."""
    email = _normalised_email(email)
    for _ in range(2):
        async with services.store.tx() as tx:
            user = await tx.user_by_email(email)
        if user is not None:
            return Principal(user_id=user.id, email=user.email, plan=user.plan)
        try:
            await _insert_user(services, email, ids.new_api_key())
        except Conflict:
            continue  # created concurrently: read it back
    raise Conflict("Email already registered", code="duplicate_email")


async def _insert_user(services: Services, email: str, key: str) -> None:
    """Insert a user owning ``key`` (stored hashed); 409 ``duplicate_email`` if taken."""
    now = services.clock.now()
    base_slug = ids.slug_from_email(email)
    for attempt in range(5):
        slug = base_slug if attempt == 0 else f"{base_slug}-{ids.new_cue_id()[4:8]}"
        values = {
            "id": ids.new_user_id(),
            "email": email,
            "api_key_hash": ids.hash_api_key(key),
            "api_key_prefix": key[:12],
            "plan": "free",
            "slug": slug,
            "webhook_secret": ids.new_webhook_secret(),
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with services.store.tx() as tx:
                await tx.insert_user(values)
        except Duplicate as dup:
            if dup.constraint == "slug":
                continue
            raise Conflict("Email already registered", code="duplicate_email") from dup
        return
    raise Conflict("Could not allocate a unique slug", code="duplicate_email")
