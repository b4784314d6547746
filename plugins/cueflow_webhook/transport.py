"""The webhook transport: validates webhook cues and sends signed deliveries and notices over
one shared aiohttp client session.

Requests go through a single ``aiohttp.ClientSession`` (a shared pool of ``delivery_concurrency``
keep-alive connections, reused per destination address; redirects are not followed, so a 3xx is
a failed attempt; proxy variables from the environment are ignored, because a proxy would
resolve names past the SSRF guard; answers are not decompressed). aiohttp rather than httpx:
its C parser makes a request about a tenth of the CPU (measured ~0.13 ms against ~2.3 ms per
request on a 2-core machine), which is what bounds a burst of deliveries. Each attempt is
bounded as a whole by ``WEBHOOK_TIMEOUT_SECONDS`` — the guard's DNS lookup, connecting, TLS,
sending and reading the answer, however slowly the receiver trickles it — (stricter than
CueAPI, which applies it per connect/read/write phase, after an unbounded lookup); notices by
10 seconds. At most 64 KiB of an answer is read.

Before each request the guard resolves the host again (on its own bounded thread pool, see
:class:`cueflow_webhook.guard.SystemResolver`) and refuses blocked addresses; a plain
``http`` request is then sent to the very address that was checked (with the original ``Host``
header), so the name cannot be re-pointed in between. ``https`` requests connect by name: TLS
certificate verification already stops a name re-pointed at a host without its certificate.

aiohttp (and yarl) are imported at the first send, not with the plugin: a node that never sends
a webhook does not carry them (about 9 MB).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import cueflow.tracing as tracing
from cueflow.config import Settings
from cueflow.errors import CueflowError, CueValidationError
from cueflow.transport import Delivery, DeliveryResult, Notice, TransportServices
from cueflow_webhook.guard import BlockedUrl, Resolver, SystemResolver, Target, UrlGuard
from cueflow_webhook.signing import (
    USER_AGENT,
    body_bytes,
    delivery_document,
    delivery_headers,
    signed_headers,
)

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

METHODS = ("POST", "GET", "PUT", "PATCH")
NOTICE_TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 500
_DRAIN_BYTES = 65_536
"""Response bytes read (and dropped) so the connection can be reused; the body is not stored."""


def error_for_status(status: int) -> str:
    """The execution's ``error_message`` for a non-2xx answer (contract §5.3)."""
    if status == 404:
        return "Webhook endpoint not found (404)"
    if status == 408:
        return "Webhook endpoint timed out"
    if status == 500:
        return "Webhook endpoint returned server error (500)"
    if 400 <= status < 500:
        return f"Webhook endpoint rejected request ({status})"
    if 500 <= status < 600:
        return f"Webhook endpoint server error ({status})"
    return f"Webhook delivery failed ({status})"


class WebhookTransport:
    """Delivers executions as signed HTTP requests to each cue's ``callback.url``."""

    name = "webhook"
    pull = False
    sends_callbacks = True
    """Deliveries carry the cue's callback and signing secret (:class:`CallbackSender`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolve: Resolver | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeout = settings.webhook_timeout_seconds
        self.lease_seconds = self.timeout + settings.delivery_lease_margin_seconds
        self.concurrency = settings.delivery_concurrency
        # As many lookup threads as deliveries in flight: lookups never wait for each other.
        resolve = resolve or SystemResolver(settings.delivery_concurrency)
        self.guard = UrlGuard(allow_private=settings.allow_private_webhooks, resolve=resolve)
        """The SSRF guard; tests replace ``guard.resolve`` to fake DNS."""
        self.wall_clock = wall_clock
        """Source of ``X-CueAPI-Timestamp``: the real time, not the engine's (possibly fake)
        clock, because receivers compare it with their own clock."""
        self._client: aiohttp.ClientSession | None = None

    # cue validation ---------------------------------------------------------------------------
    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """A webhook cue needs a ``callback.url`` (422), a method among POST, GET, PUT, PATCH
        (422), and callback and ``on_failure.webhook`` URLs the guard accepts (400
        ``invalid_callback_url``). On a change only URLs that changed are checked again, so a
        cue whose host stopped resolving can still be paused (send time checks them anyway)."""
        url = cue.get("callback_url")
        if not url:
            raise CueValidationError(
                "body: Value error, callback.url is required for webhook transport"
            )
        if cue.get("callback_method") not in METHODS:
            raise CueValidationError(
                "body.callback.method: Value error, callback.method must be one of "
                + ", ".join(METHODS)
            )
        if previous is None or url != previous.get("callback_url"):
            await self._check(url)
        webhook = _failure_webhook(cue)
        if webhook and (previous is None or webhook != _failure_webhook(previous)):
            await self._check(webhook, prefix="on_failure.webhook: ")

    async def _check(self, url: str, prefix: str = "") -> None:
        try:
            await self.guard.check(url)
        except BlockedUrl as exc:
            raise CueflowError(prefix + exc.message, code="invalid_callback_url") from exc

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self, services: TransportServices) -> None:
        """Open the shared HTTP client."""
        self._http()

    async def stop(self) -> None:
        """Close the shared HTTP client (it reopens on the next send)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _http(self) -> aiohttp.ClientSession:
        aiohttp = _aiohttp()
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, use_dns_cache=False),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
        return self._client

    # sending -----------------------------------------------------------------------------------
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Send one attempt: ``callback.method`` to ``callback.url``, signed with the owner's
        secret as it is now. ``GET`` sends no body but the same headers."""
        callback = delivery.callback
        if callback is None:
            return DeliveryResult(ok=False, error="Webhook cue has no callback.url")
        body = body_bytes(delivery_document(delivery))
        timestamp = str(int(self.wall_clock()))
        return await self._send(
            callback.method,
            callback.url,
            None if callback.method == "GET" else body,
            tracing.with_trace_headers(delivery_headers(delivery, callback, timestamp, body)),
            self.timeout,
        )

    async def check_url(self, url: str) -> None:
        """Refuse (``ValueError``) a URL the SSRF guard blocks, with the guard's message."""
        try:
            await self.guard.check(url)
        except BlockedUrl as exc:
            raise ValueError(exc.message) from exc

    async def notify(self, notice: Notice) -> DeliveryResult:
        """POST a signed notice (a ``cue.failed`` alert), once."""
        body = body_bytes(notice.body)
        headers = {
            **signed_headers(notice.secret, str(int(self.wall_clock())), body),
            **notice.headers,
            "User-Agent": USER_AGENT,
        }
        return await self._send(
            "POST", notice.url, body, list(headers.items()), NOTICE_TIMEOUT_SECONDS
        )

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: list[tuple[str, str]],
        timeout: float,
    ) -> DeliveryResult:
        aiohttp = _aiohttp()
        try:
            async with asyncio.timeout(timeout):  # one deadline for the whole attempt
                status, answer = await self._attempt(method, url, body, headers, timeout)
        except BlockedUrl as exc:
            return DeliveryResult(ok=False, error=exc.message)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return DeliveryResult(ok=False, error="Webhook endpoint timed out")
        except aiohttp.ClientConnectorError:
            return DeliveryResult(ok=False, error="Could not connect to webhook endpoint")
        except (aiohttp.ClientError, ValueError) as exc:
            return DeliveryResult(
                ok=False, error=(str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]
            )
        if 200 <= status < 300:
            return DeliveryResult(ok=True, http_status=status, output=_json_answer(answer))
        return DeliveryResult(ok=False, http_status=status, error=error_for_status(status))

    async def _attempt(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: list[tuple[str, str]],
        timeout: float,
    ) -> tuple[int, bytes | None]:
        """Check ``url``, send the request to the checked address and read the start of the
        answer; its status, and its body when it is JSON read whole within the first
        ``_DRAIN_BYTES`` (a flow step's output)."""
        from yarl import URL

        aiohttp = _aiohttp()
        target = await self.guard.check_send(url)
        address, headers = _pin(URL(url), target, headers)
        async with self._http().request(
            method,
            address,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            kept: list[bytes] = []
            drained = 0
            while drained < _DRAIN_BYTES and (chunk := await response.content.readany()):
                kept.append(chunk)
                drained += len(chunk)
            if drained >= _DRAIN_BYTES or not _is_plain_json(response):
                return response.status, None  # not an answer to keep
            return response.status, b"".join(kept)


def _aiohttp() -> ModuleType:
    """The aiohttp module, imported on first use."""
    import aiohttp

    return aiohttp


def _is_plain_json(response: aiohttp.ClientResponse) -> bool:
    """Whether the answer is JSON sent as is (no content encoding to undo)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    return "json" in response.headers.get("content-type", "").lower() and encoding == "identity"


def _json_answer(answer: bytes | None) -> Any:
    """The JSON value of an answer kept by :meth:`WebhookTransport._attempt`, else ``None``."""
    if not answer:
        return None
    try:
        return json.loads(answer)
    except ValueError:
        return None


def _failure_webhook(cue: Mapping[str, Any]) -> str | None:
    return (cue.get("on_failure") or {}).get("webhook")


def _pin(
    url: URL, target: Target, headers: list[tuple[str, str]]
) -> tuple[URL, list[tuple[str, str]]]:
    """Point a plain-http request at the checked address, keeping the name in ``Host``."""
    if target.scheme != "http" or target.is_literal:
        return url, headers
    own = [(name, value) for name, value in headers if name.lower() != "host"]
    return url.with_host(target.addresses[0]), [("Host", str(url.raw_authority)), *own]
