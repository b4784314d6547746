"""Identifiers and secrets, in CueAPI's formats."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid

_CUE_ALPHABET = string.ascii_lowercase + string.digits


def new_api_key() -> str:
    """``cue_sk_`` + 32 lowercase hex characters."""
    return "cue_sk_" + secrets.token_hex(16)


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest stored instead of the key (unsalted, as CueAPI stores it, so keys
    migrated from a CueAPI database keep working)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_cue_id() -> str:
    """``cue_`` + 12 characters of ``[a-z0-9]``."""
    return "cue_" + "".join(secrets.choice(_CUE_ALPHABET) for _ in range(12))


def new_execution_id() -> str:
    """A bare UUID v4 string."""
    return str(uuid.uuid4())


def new_user_id() -> str:
    """A UUID v4 string (never shown on the wire)."""
    return str(uuid.uuid4())


def new_webhook_secret() -> str:
    """``whsec_`` + 64 lowercase hex characters."""
    return "whsec_" + secrets.token_hex(32)


def slug_from_email(email: str) -> str:
    """The email's local part, lower-cased, runs of other characters turned into ``-``."""
    local = email.split("@", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", local).strip("-")[:60]
    return slug or "user"


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a canonical UUID string (execution ids are)."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def new_flow_id() -> str:
    """``flw_`` + 12 characters of ``[a-z0-9]`` (like a cue id)."""
    return "flw_" + "".join(secrets.choice(_CUE_ALPHABET) for _ in range(12))


def new_flow_run_id() -> str:
    """``run_`` + 12 characters of ``[a-z0-9]``."""
    return "run_" + "".join(secrets.choice(_CUE_ALPHABET) for _ in range(12))
