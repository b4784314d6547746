"""Checks on caller-supplied JSON that every store can hold.

PostgreSQL refuses NUL characters in text and JSON, and cueflow's JSON encoding (orjson) holds
integers within 64 bits. These helpers find (or remove) such values before they reach a store,
so bad input answers 4xx instead of failing in the database.
"""

from __future__ import annotations

from typing import Any

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def has_nul(value: Any) -> bool:
    """Whether any string in ``value`` (keys included, recursively) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def strip_nul(value: Any) -> Any:
    """``value`` with every NUL character removed from its strings."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value


def has_huge_int(value: Any) -> bool:
    """Whether ``value`` holds an integer JSON encoding cannot keep (beyond 64 bits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not _INT_MIN <= value <= _INT_MAX
    if isinstance(value, dict):
        return any(has_huge_int(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_huge_int(v) for v in value)
    return False
