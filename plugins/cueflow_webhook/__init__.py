"""The ``webhook`` transport: each execution is sent as a signed HTTP request, as CueAPI does.

At each fire the engine's dispatcher (:mod:`cueflow.dispatcher`) hands the execution to this
transport, which sends ``callback.method`` (POST by default; GET sends no body) to
``callback.url`` with the body ``{"attempt", "cue_id", "execution_id", "name", "payload",
"scheduled_for"}`` and CueAPI's headers, signed with the owner's ``whsec_`` secret so that the
official SDK's ``cueapi.verify_webhook`` accepts it (see :mod:`cueflow_webhook.signing`). A 2xx
answer delivers the execution; anything else, a timeout or a refused connection is a failed
attempt, retried per the cue's ``retry`` policy; when the attempts run out the execution fails
and ``on_failure`` applies (see :mod:`cueflow.alerts`). Delivery is at least once: receivers
should be idempotent on ``execution_id``.

Reported outcomes (``POST /v1/executions/{id}/outcome``) never change a webhook execution's
status: delivery status and outcome are separate facts.

Deliberate differences from CueAPI:

* A cue's custom ``callback.headers`` cannot replace ``X-CueAPI-Signature`` or
  ``X-CueAPI-Timestamp`` (CueAPI lets them, producing deliveries that cannot verify).
* Every send re-checks the URL against the SSRF guard (:mod:`cueflow_webhook.guard`), also for
  ``on_failure`` notices (CueAPI does not), and plain-http requests connect to the address that
  was checked. A refusal at send time is a failed attempt with ``error_message``
  ``Callback URL resolved to blocked IP``.
* The guard has no development mode keyed on ``ENV``: private targets need the operator setting
  below, and http is accepted as well as https.
* The ``cue.failed`` notice is signed, and a ``delivery_failed`` alert row is kept.
* The signature is made when the attempt is sent, with the secret current then (CueAPI signs
  first attempts with the secret copied when the execution was queued).
* The payload sent is the cue's payload at send time (CueAPI snapshots it for first attempts).

Operators: ``CUEFLOW_ALLOW_PRIVATE_WEBHOOKS=true`` lets webhooks reach loopback and private
networks (local development and tests); it is off by default. ``WEBHOOK_TIMEOUT_SECONDS`` (30)
bounds each attempt as a whole, DNS lookup included; ``WEBHOOK_CONCURRENCY_PER_WORKER`` (50)
bounds deliveries in flight, of which ``CUEFLOW_DELIVERY_PER_ACCOUNT_CONCURRENCY`` (10) per
account and ``CUEFLOW_DELIVERY_PER_HOST_CONCURRENCY`` (20) per destination host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cueflow.config import Settings
from cueflow.markers import hookimpl
from cueflow.transport import Notifier, Transport
from cueflow_webhook.transport import WebhookTransport

__all__ = ["WebhookTransport"]


@hookimpl
def cueflow_register_transports(register: Callable[[Transport], None], settings: Settings) -> None:
    """Register the ``webhook`` transport."""
    register(WebhookTransport(settings))


@hookimpl
def cueflow_register_notifiers(
    register: Callable[[Notifier], None], transports: Mapping[str, Transport]
) -> None:
    """Send failure notices (``cue.failed`` alerts) through the ``webhook`` transport, sharing
    its HTTP client and SSRF guard."""
    transport = transports.get("webhook")
    if isinstance(transport, WebhookTransport):
        register(transport)
