"""The SSRF guard: which URLs webhooks, ``on_failure`` and alert notices may be sent to.

A URL is checked twice. When a cue is created or changed, with CueAPI's messages (contract §5.4,
answered as 400 ``invalid_callback_url``): http or https, no credentials, a hostname, not a
blocked hostname, and every address the name resolves to outside the blocked ranges. And again
before every send, after a fresh DNS resolution, because a name can be re-pointed after it was
accepted (DNS rebinding); the transport then connects to the address that was checked, so the
name cannot be switched between the check and the connection.

Blocked, always: ``0.0.0.0/8``, link-local ``169.254.0.0/16`` (cloud metadata at
169.254.169.254) and ``fe80::/10``, ``192.0.0.0/24``, the TEST-NETs, ``198.18.0.0/15``,
multicast, ``240.0.0.0/4`` and broadcast, ``::``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``,
IPv6 documentation and multicast ranges, and the hostnames ``metadata.google.internal`` and
``metadata.internal``. Blocked unless the operator sets ``CUEFLOW_ALLOW_PRIVATE_WEBHOOKS``:
loopback (``127.0.0.0/8``, ``::1``, ``localhost`` and ``*.localhost``), private networks
(``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``) and carrier-grade NAT ``100.64/10``.
IPv4-mapped, -compatible and -translated IPv6 addresses are judged by the IPv4 address they
carry.

Names are resolved by :class:`SystemResolver`: the system resolver on a small thread pool of
its own, so slow DNS never occupies the event loop's shared default executor. The resolver is
injectable (:attr:`UrlGuard.resolve`), so tests make names resolve wherever they like without
real DNS.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]
"""Resolves a hostname to its addresses (as strings); raises ``OSError`` when it cannot."""

DELIVERY_BLOCKED = "Callback URL resolved to blocked IP"


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


PRIVATE_NETWORKS = _networks(
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "::1/128", "fc00::/7",
)  # fmt: skip
"""Loopback and private ranges, allowed when the operator allows private webhooks."""
BLOCKED_NETWORKS = _networks(
    "0.0.0.0/8", "169.254.0.0/16", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b::/96", "64:ff9b:1::/48",
    "2002::/16", "2001:db8::/32", "100::/64", "2001::/32",
)  # fmt: skip
"""Ranges no webhook may reach, whatever the operator allows (``2001::/32`` is Teredo, which
carries an IPv4 address too)."""
EMBEDDED_IPV4 = _networks("::/96", "::ffff:0:0:0/96")
"""IPv4-compatible (``::a.b.c.d``) and IPv4-translated (``::ffff:0:a.b.c.d``) addresses,
judged like IPv4-mapped ones by the IPv4 address they carry."""
METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.internal"})


class BlockedUrl(Exception):
    """A URL the guard refuses; ``message`` is the contract's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and which name to present."""

    scheme: str
    host: str
    """The hostname as written in the URL (lower-case, no brackets)."""
    addresses: tuple[str, ...]
    """Allowed addresses to connect to, in resolver order."""

    @property
    def is_literal(self) -> bool:
        """Whether the URL names an IP address rather than a hostname."""
        return _literal(self.host) is not None


def _getaddrinfo(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


class SystemResolver:
    """Every address (A and AAAA) the system resolver (hosts file, DNS ...) gives for a name,
    looked up on a thread pool of at most ``threads`` threads of its own.

    A lookup cannot be stopped once it runs, so a caller bounds its own wait (the webhook
    transport's attempt deadline) and the thread stays busy until the system resolver gives up;
    a pool of its own keeps such threads from starving the event loop's shared executor, and
    concurrent lookups of one name share one thread."""

    def __init__(self, threads: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cueflow-dns")
        self._lookups: dict[str, Future[list[str]]] = {}
        self._lock = threading.Lock()

    async def __call__(self, host: str) -> list[str]:
        with self._lock:
            lookup = self._lookups.get(host)
            if lookup is None:
                lookup = self._lookups[host] = self._pool.submit(_getaddrinfo, host)
                started = True
            else:
                started = False
        if started:
            lookup.add_done_callback(lambda done: self._forget(host, done))
        # Shielded: a caller whose deadline passes must not cancel the lookup others share.
        return await asyncio.shield(asyncio.wrap_future(lookup))

    def _forget(self, host: str, lookup: Future[list[str]]) -> None:
        with self._lock:
            if self._lookups.get(host) is lookup:
                del self._lookups[host]


resolve_host: Resolver = SystemResolver()
"""The default resolver of a :class:`UrlGuard`."""


@functools.lru_cache(maxsize=4096)
def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


@functools.lru_cache(maxsize=4096)
def _blocked(address: Address, allow_private: bool) -> bool:
    """:meth:`UrlGuard.blocked`, remembered per address: every send checks the addresses its
    host resolves to, and matching one against every range costs more than the rest of the
    check (the resolution itself is never remembered)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    elif (
        isinstance(address, ipaddress.IPv6Address)
        and any(address in net for net in EMBEDDED_IPV4)
        and address != ipaddress.IPv6Address("::1")
    ):
        address = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if any(address in net for net in BLOCKED_NETWORKS):
        return True
    return not allow_private and any(address in net for net in PRIVATE_NETWORKS)


class UrlGuard:
    """Checks URLs against the blocked ranges; ``allow_private`` lifts the private ones."""

    def __init__(self, *, allow_private: bool = False, resolve: Resolver = resolve_host) -> None:
        self.allow_private = allow_private
        self.resolve = resolve

    def blocked(self, address: Address) -> bool:
        """Whether ``address`` may not be reached."""
        return _blocked(address, self.allow_private)

    def _blocked_hostname(self, host: str) -> bool:
        return host in METADATA_HOSTNAMES or (not self.allow_private and _is_localhost(host))

    async def check(self, url: str) -> Target:
        """Check a URL about to be stored, with the contract's creation-time messages."""
        scheme, host = _parts(url)
        if self._blocked_hostname(host):
            raise BlockedUrl(f"Blocked hostname: {host}")
        addresses = await self._addresses(host)
        if addresses is None:
            raise BlockedUrl(f"Cannot resolve hostname: {host}")
        if not addresses or any(self.blocked(a) for a in addresses):
            raise BlockedUrl("Callback URL resolves to blocked address range")
        return Target(scheme, host, tuple(str(a) for a in addresses))

    async def check_send(self, url: str) -> Target:
        """Check a URL just before sending to it, after a fresh resolution: any blocked address,
        or none at all, refuses it with ``Callback URL resolved to blocked IP``."""
        scheme, host = _parts(url)
        if self._blocked_hostname(host):
            raise BlockedUrl(DELIVERY_BLOCKED)
        addresses = await self._addresses(host)
        if not addresses or any(self.blocked(a) for a in addresses):
            raise BlockedUrl(DELIVERY_BLOCKED)
        return Target(scheme, host, tuple(str(a) for a in addresses))

    async def _addresses(self, host: str) -> list[Address] | None:
        """The host's addresses (``None`` when it does not resolve)."""
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            found = await self.resolve(host)
        except (OSError, UnicodeError):
            return None
        if not found:
            return None
        addresses = [_literal(a) for a in found]
        if any(a is None for a in addresses):
            return []  # an answer that is not an address is refused like a blocked one
        return [a for a in addresses if a is not None]


@functools.lru_cache(maxsize=4096)
def _parts(url: str) -> tuple[str, str]:
    """The scheme and lower-case hostname of ``url``, or :class:`BlockedUrl`."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise BlockedUrl("Invalid URL format") from exc
    if parts.scheme not in ("http", "https"):
        raise BlockedUrl("URL must use http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise BlockedUrl("Credentials in callback URLs are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedUrl("URL must have a hostname")
    return parts.scheme, host
