"""Secrets at rest: the Fernet keys of ``CUEFLOW_SECRET_KEY`` and the values they seal.

``CUEFLOW_SECRET_KEY`` is a comma-separated list of Fernet keys, newest first (as
``cryptography.fernet.MultiFernet`` takes them): values are sealed with the first and opened
with any. A sealed value is stored as :data:`SEALED_PREFIX` followed by the Fernet token, so a
value written before a key was set (no prefix) still reads as it is, and is sealed the next time
it is written (``cueflow db rotate-secret-key`` writes them all).

Each SQL engine carries its own box (:func:`attach` keys it by the engine's dialect, which is
what the column types of :mod:`cueflow.sql.types` see), so two stores in one process may use
different keys. Errors name the problem, never a key or a value. ``cryptography`` is imported
only when a key is set (about 6 MB a server without one need not carry).
"""

from __future__ import annotations

import logging
import weakref

from pydantic import SecretStr
from sqlalchemy.engine import Dialect

from cueflow.errors import PluginError

log = logging.getLogger("cueflow.secrets")

SEALED_PREFIX = "cfsealed1:"
"""Marks a stored value as a Fernet token (version 1 of the format)."""
KEY_SETTING = "CUEFLOW_SECRET_KEY"
NO_KEY_WARNING = (
    f"{KEY_SETTING} is not set: webhook signing secrets and callback headers are stored in "
    "plaintext. Set it to a Fernet key to encrypt them at rest (docs/operations.md, Secrets)."
)


class SecretKeyError(PluginError):
    """``CUEFLOW_SECRET_KEY`` is malformed, or cannot open the secrets stored in the database;
    stops start-up with a message that names neither keys nor secrets."""


class SecretBox:
    """Seals and opens stored secrets with a key-rotation list."""

    def __init__(self, keys: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise SecretKeyError(f"{KEY_SETTING} is set but holds no key")
        fernets = []
        for number, part in enumerate(parts, 1):
            try:
                fernets.append(Fernet(part.encode()))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"{KEY_SETTING}: key {number} of {len(parts)} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes)"
                ) from None
        self.key_count = len(parts)
        self._fernet = MultiFernet(fernets)

    def seal(self, text: str) -> str:
        """``text`` encrypted with the newest key, marked with :data:`SEALED_PREFIX`."""
        return SEALED_PREFIX + self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a stored value (an unmarked value is returned as it is)."""
        if not is_sealed(stored):
            return stored
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"a stored secret cannot be decrypted with any key of {KEY_SETTING}: the key it "
                "was sealed with is missing from the list (or the value is damaged)"
            ) from None


def is_sealed(stored: str) -> bool:
    """Whether a stored value is a sealed one."""
    return stored.startswith(SEALED_PREFIX)


def open_without_key(stored: str) -> str:
    """A stored value read with no key set: as it is, unless it is sealed (then an error)."""
    if is_sealed(stored):
        raise SecretKeyError(f"the database holds encrypted secrets but {KEY_SETTING} is not set")
    return stored


_boxes: weakref.WeakKeyDictionary[Dialect, SecretBox] = weakref.WeakKeyDictionary()
_keyless: weakref.WeakSet[Dialect] = weakref.WeakSet()
_warned = False


def attach(dialect: Dialect, keys: SecretStr | str | None) -> SecretBox | None:
    """Give the engine of ``dialect`` the box of ``keys`` (the ``secret_key`` setting;
    ``None``: store plaintext, and :func:`warn_without_key` says so). Raises
    :class:`SecretKeyError` for malformed keys."""
    if isinstance(keys, SecretStr):
        keys = keys.get_secret_value()
    if not keys or not keys.strip():
        _boxes.pop(dialect, None)
        _keyless.add(dialect)
        return None
    box = SecretBox(keys)
    _keyless.discard(dialect)
    _boxes[dialect] = box
    return box


def warn_without_key(dialect: Dialect) -> None:
    """Log :data:`NO_KEY_WARNING` if ``dialect``'s engine stores secrets in plaintext, once per
    process (called when a store opens, after the server configured its logging)."""
    global _warned
    if dialect in _keyless and not _warned:
        _warned = True
        log.warning(NO_KEY_WARNING)


def box_of(dialect: Dialect) -> SecretBox | None:
    """The box attached to ``dialect``'s engine, if any."""
    return _boxes.get(dialect)
