"""Alerts: what a user should know went wrong, kept for ``GET /v1/alerts`` and pushed out.

When a push execution fails for the last time (its ``retry.max_attempts`` used up), cueflow

* stores an alert of type ``delivery_failed`` — a cueflow extension: CueAPI's types are
  ``consecutive_failures``, ``outcome_timeout`` and ``verification_failed``, and CueAPI keeps no
  alert row for exhausted webhook retries. The filter of ``GET /v1/alerts`` accepts all four;
* sends one signed ``cue.failed`` notice to the cue's ``on_failure.webhook`` or, when it has
  none, to the owner's ``alert_webhook_url``. The body is CueAPI's (``event``, ``cue_id``,
  ``cue_name``, ``attempts``, ``last_http_status``, ``last_error``, ``failed_at``,
  ``dashboard_url``) plus ``execution_id`` and ``alert_id``; ``dashboard_url`` is ``null``
  (cueflow has no dashboard). Unlike CueAPI, which sends this notice unsigned, it is signed like
  a delivery (``X-CueAPI-Signature``/``X-CueAPI-Timestamp``) with the user's alert webhook
  secret, and carries ``X-CueAPI-Alert-Id`` and ``X-CueAPI-Alert-Type``. It is sent once, after
  the failure is committed, with no retries: if the process dies in between, it is not sent
  (the alert row stays). ``on_failure.email`` is accepted and stored but cueflow sends no email.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cueflow.authentication import Principal
from cueflow.errors import CueflowError
from cueflow.records import Alert
from cueflow.transport import Notice

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)

DELIVERY_FAILED = "delivery_failed"
ALERT_TYPES = ("consecutive_failures", DELIVERY_FAILED, "outcome_timeout", "verification_failed")
"""Values of ``alert_type``: CueAPI's three and cueflow's ``delivery_failed``."""
MAX_ERROR_CHARS = 500


async def send(services: Services, notices: Iterable[Notice]) -> None:
    """Send each notice once through the engine's notifier. A failure is logged (with the target
    host only: webhook URLs often embed tokens) and dropped."""
    for notice in notices:
        host = urlsplit(notice.url).hostname
        if services.transports.notifier is None:
            log.warning("no transport can send alert webhooks; alert to %s dropped", host)
            continue
        try:
            result = await services.transports.notifier.notify(notice)
        except Exception:
            log.exception("alert webhook to %s failed", host)
            continue
        if not result.ok:
            log.warning("alert webhook to %s failed: %s", host, result.error)


async def list_alerts(
    services: Services,
    user: Principal,
    alert_type: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Alert], int]:
    """A page of the caller's alerts, newest first, and the total; 400 ``invalid_filter`` for an
    unknown ``alert_type``."""
    if alert_type is not None and alert_type not in ALERT_TYPES:
        raise CueflowError(
            f"Invalid alert_type. Must be one of: {', '.join(ALERT_TYPES)}",
            code="invalid_filter",
        )
    async with services.store.tx() as tx:
        return await tx.list_alerts(user.user_id, alert_type, since, limit, offset)
