"""Fair sharing of delivery slots between accounts and destinations.

One account's slow receivers must not delay everybody's deliveries: at most
``delivery_per_account_concurrency`` deliveries of one account and
``delivery_per_host_concurrency`` to one destination (host and port of ``callback_url``) are in
flight at once in a process, and free slots go round-robin between the accounts with due work,
the account with the fewest deliveries in flight first (:func:`share`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cueflow.records import DeliveryCandidate

_DEFAULT_PORTS = {"http": 80, "https": 443}


def destination(url: str | None) -> str | None:
    """The destination a delivery to ``url`` loads: ``host:port`` (``None`` without a URL)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    return f"{(parts.hostname or '').rstrip('.')}:{port}"


@dataclass(frozen=True)
class Slot:
    """What a delivery task in flight is for: its transport (``None``: alerts), account and
    destination."""

    transport: str | None
    account: str | None = None
    destination: str | None = None


def share(
    candidates: Iterable[DeliveryCandidate],
    slots: int,
    busy: Iterable[Slot],
    per_account: int,
    per_host: int,
) -> list[DeliveryCandidate]:
    """Which of ``candidates`` (due executions) take ``slots`` free slots while ``busy`` are
    in flight: round-robin between accounts, the account with the fewest in flight first
    (each account's oldest first), never more than ``per_account`` of one account nor
    ``per_host`` to one destination in flight (0: no cap)."""
    busy = list(busy)
    accounts = Counter(slot.account for slot in busy)
    hosts = Counter(slot.destination for slot in busy)
    turns: Counter[str] = Counter()
    queue: list[tuple[int, datetime, str, DeliveryCandidate]] = []
    for run in sorted(candidates, key=lambda c: (c.scheduled_for, c.id)):
        turns[run.user_id] += 1
        turn = accounts[run.user_id] + turns[run.user_id]
        queue.append((turn, run.scheduled_for, run.id, run))
    queue.sort(key=lambda item: item[:3])
    chosen: list[DeliveryCandidate] = []
    for *_, run in queue:
        if len(chosen) >= slots:
            break
        account, host = run.user_id, destination(run.callback_url)
        if per_account and accounts[account] >= per_account:
            continue
        if per_host and host is not None and hosts[host] >= per_host:
            continue
        accounts[account] += 1
        hosts[host] += 1
        chosen.append(run)
    return chosen
