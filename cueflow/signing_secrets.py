"""Signing secrets: the user's webhook secret and alert webhook secret.

Every user gets a ``whsec_`` webhook secret at registration; webhook deliveries are signed with
the secret current when the attempt is sent, so after a rotation the next delivery (retries
included) is signed with the new secret. A rotation may keep the previous secret for an overlap
window (``overlap_seconds``, by default ``webhook_secret_overlap_seconds``): until it ends,
deliveries carry a signature with each secret, so receivers can switch at any moment within it
(a second rotation in the window replaces the kept secret). The alert webhook secret
(64 hex characters, no prefix) signs ``cue.failed`` notices; it is created on first use, either
when the user reads it or when the first notice needs it. Secrets are stored as they are (the
HMAC needs them; encrypted at rest when ``CUEFLOW_SECRET_KEY`` is set) and are never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.errors import NotFound
from cueflow.records import Account
from cueflow.store import StoreTx

if TYPE_CHECKING:
    from cueflow.services import Services


def new_alert_secret() -> str:
    """64 lowercase hex characters."""
    return secrets.token_hex(32)


async def _user(tx: StoreTx, user: Principal) -> Account:
    row = await tx.get_user(user.user_id)
    if row is None:
        raise NotFound("User not found", code="user_not_found")
    return row


async def webhook_secret(services: Services, user: Principal) -> str:
    """The caller's current webhook secret; 404 ``no_webhook_secret`` if it has none."""
    async with services.store.tx() as tx:
        row = await _user(tx, user)
    if not row.webhook_secret:
        raise NotFound("No webhook secret found", code="no_webhook_secret")
    return str(row.webhook_secret)


@dataclass(frozen=True)
class SecretRotation:
    """A new webhook secret, and until when the one it replaced also signs deliveries
    (``None``: the previous secret stopped at once)."""

    webhook_secret: str
    previous_valid_until: datetime | None


async def rotate_webhook_secret(
    services: Services, user: Principal, overlap_seconds: int | None = None
) -> SecretRotation:
    """Replace the caller's webhook secret. The old one keeps signing deliveries (beside the
    new one) for ``overlap_seconds`` (default: the ``webhook_secret_overlap_seconds``
    setting); 0 stops it at once."""
    if overlap_seconds is None:
        overlap_seconds = services.settings.webhook_secret_overlap_seconds
    secret = ids.new_webhook_secret()
    now = services.clock.now()
    until = now + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    async with services.store.tx() as tx:
        # locked: of two rotations at once, the second keeps the first's secret as previous
        row = await tx.lock_user(user.user_id)
        if row is None:
            raise NotFound("User not found", code="user_not_found")
        values = {
            "webhook_secret": secret,
            "previous_webhook_secret": row.webhook_secret if until else None,
            "previous_webhook_secret_until": until,
            "updated_at": now,
        }
        if await tx.update_user(user.user_id, values) is None:
            raise NotFound("User not found", code="user_not_found")
    return SecretRotation(webhook_secret=secret, previous_valid_until=until)


async def ensure_alert_secret(tx: StoreTx, user: Account, now: datetime) -> str:
    """The user's alert webhook secret, created inside ``tx`` if it does not exist yet (when two
    callers race, both get the one that was stored)."""
    if user.alert_webhook_secret:
        return str(user.alert_webhook_secret)
    stored = await tx.update_user(
        user.id,
        {"alert_webhook_secret": new_alert_secret(), "updated_at": now},
        expect={"alert_webhook_secret": None},
    )
    if stored is None:
        stored = await tx.get_user(user.id)
        assert stored is not None  # the account is the one just read
    return str(stored.alert_webhook_secret)


async def alert_webhook_secret(services: Services, user: Principal) -> str:
    """The caller's alert webhook secret, created on first call."""
    async with services.store.tx() as tx:
        return await ensure_alert_secret(tx, await _user(tx, user), services.clock.now())


async def rotate_alert_webhook_secret(services: Services, user: Principal) -> str:
    """Replace the caller's alert webhook secret."""
    secret = new_alert_secret()
    now = services.clock.now()
    async with services.store.tx() as tx:
        values = {"alert_webhook_secret": secret, "updated_at": now}
        if await tx.update_user(user.user_id, values) is None:
            raise NotFound("User not found", code="user_not_found")
    return secret
