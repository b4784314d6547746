"""The public Python API of accounts: registration, principals, API keys, signing secrets,
the caller's account and usage, and its alert log (methods of :class:`cueflow.engine.Engine`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import cueflow.accounts as accounts
import cueflow.alerts as alerts
import cueflow.api_keys as api_keys
import cueflow.change_feed as change_feed
import cueflow.signing_secrets as signing_secrets
import cueflow.stats as stats
import cueflow.usage as usage
from cueflow.authentication import Authenticator, Principal
from cueflow.records import AccountSummary, Alert, ApiKeyList
from cueflow.schemas import RegisterRequest

if TYPE_CHECKING:
    from cueflow.services import Services


class AccountMethods:
    """Accounts, keys and secrets, usage and alerts."""

    services: Services
    auth: Authenticator
    stream_slots: change_feed.StreamSlots

    async def register(self, email: str) -> dict[str, str]:
        """Create a user; returns ``{"api_key", "email"}``."""
        return await accounts.register(self.services, RegisterRequest(email=email))

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer cue_sk_...`` header value."""
        return await self.auth.authenticate(authorization)

    async def principal(self, api_key: str) -> Principal:
        """The caller owning ``api_key`` (for embedding code that holds a key)."""
        return await self.auth.authenticate(f"Bearer {api_key}")

    async def account(self, email: str) -> Principal:
        """The account registered with ``email``, created if there is none: how Python code
        gets a principal without handling API keys (none is returned or logged). Cues created
        for it are listed over REST to whoever holds a key of the same account."""
        return await accounts.account(self.services, email)

    async def create_account(self, email: str) -> dict[str, str]:
        """Create an account whatever ``ALLOW_REGISTER`` says: ``{"api_key", "email"}``, the
        only time the key is shown (``cueflow accounts create``)."""
        return await accounts.create_account(self.services, email)

    async def webhook_secret(self, user: Principal) -> str:
        """The caller's webhook signing secret (``whsec_...``)."""
        return await signing_secrets.webhook_secret(self.services, user)

    async def rotate_webhook_secret(
        self, user: Principal, overlap_seconds: int | None = None
    ) -> signing_secrets.SecretRotation:
        """Replace the caller's webhook secret; the next delivery is signed with the new one,
        and with the old one too for ``overlap_seconds`` (default: the
        ``webhook_secret_overlap_seconds`` setting)."""
        return await signing_secrets.rotate_webhook_secret(self.services, user, overlap_seconds)

    async def alert_webhook_secret(self, user: Principal) -> str:
        """The caller's alert webhook secret, created on first call."""
        return await signing_secrets.alert_webhook_secret(self.services, user)

    async def rotate_alert_webhook_secret(self, user: Principal) -> str:
        """Replace the caller's alert webhook secret."""
        return await signing_secrets.rotate_alert_webhook_secret(self.services, user)

    # the caller's account
    async def me(self, user: Principal) -> AccountSummary:
        """The caller's account: email, plan, counts and limits, key prefix, slug."""
        return await accounts.me(self.services, user)

    async def update_me(
        self, user: Principal, update: accounts.AccountUpdate | dict[str, Any]
    ) -> dict[str, str]:
        """Change the caller's ``email`` and/or ``alert_webhook_url`` (``""`` clears it)."""
        if isinstance(update, dict):
            update = accounts.AccountUpdate.model_validate(update)
        return await accounts.update_me(self.services, self.auth, user, update)

    async def regenerate_api_key(self, user: Principal) -> str:
        """Replace the caller's API key; the old one answers 401 ``key_rotated`` from now on."""
        return await accounts.regenerate_key(self.services, self.auth, user)

    async def reveal_api_key(self, user: Principal) -> dict[str, Any]:
        """What ``GET /v1/auth/key`` shows: only the key's prefix (keys are stored hashed)."""
        return await accounts.reveal_key(self.services, user)

    async def create_api_key(
        self, user: Principal, scope: str, name: str | None = None
    ) -> dict[str, Any]:
        """A new key of the caller's account with ``scope`` (``full``, ``worker`` or ``read``);
        the answer's ``api_key`` is the secret, shown this once."""
        request = api_keys.ApiKeyCreate.model_validate({"scope": scope, "name": name})
        return await api_keys.create_key(self.services, user, request)

    async def list_api_keys(self, user: Principal) -> ApiKeyList:
        """The caller's live scoped keys (no secrets) and the account key's prefix."""
        return await api_keys.list_keys(self.services, user)

    async def revoke_api_key(self, user: Principal, key_id: str) -> None:
        """Revoke one of the caller's scoped keys; it answers 401 ``key_revoked`` from now on."""
        await api_keys.revoke_key(self.services, self.auth, user, key_id)

    async def usage(self, user: Principal, *, rate_used: int = 0) -> dict[str, Any]:
        """The caller's usage this calendar month against the configured limits."""
        return await usage.usage(self.services, user, rate_used)

    async def stats_overview(self, user: Principal, window: str = "1h") -> dict[str, Any]:
        """The caller's executions per minute by status, delay percentiles and queue over the
        last hour (``1h``) or day (``24h``) (:mod:`cueflow.stats`)."""
        return await stats.overview(self.services, user, window)

    def change_stream(
        self, user: Principal, gone: Callable[[], Awaitable[bool]]
    ) -> AsyncGenerator[bytes, None]:
        """The caller's execution and cue changes as server-sent events, until ``gone()``,
        the stream's time limit or a drain (:mod:`cueflow.change_feed`)."""
        return change_feed.stream(self.services, user, gone, slots=self.stream_slots)

    # alerts
    async def list_alerts(
        self,
        user: Principal,
        *,
        alert_type: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Alert], int]:
        """A page of the caller's alerts, newest first, and the total."""
        return await alerts.list_alerts(self.services, user, alert_type, since, limit, offset)
