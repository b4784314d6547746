"""Which failures mean "the database is unavailable", as opposed to a bug or a bad request.

A database that cannot be reached, has gone away, does not answer within its deadline, is
restarting, or is out of disk or connections is a condition that passes: callers get 503
``database_unavailable`` with ``Retry-After`` (:class:`cueflow.errors.DatabaseUnavailable`), the
background loops retry, and ``/health`` reports it. Everything else stays an error of its own.

The test is by shape (exception types of the standard library, SQLSTATE classes, SQLite's
messages, SQLAlchemy's ``connection_invalidated``) so this module needs no database driver.
"""

from __future__ import annotations

from collections.abc import Iterator

_SQLSTATE_CLASSES = ("08", "53", "57P", "58")
"""Connection exception, insufficient resources (disk full, out of memory, too many
connections), operator intervention (shutdown, crash, starting up), system error (I/O)."""
_SQLSTATES = frozenset({"57014", "25P03"})
"""Statement cancelled (``statement_timeout``), idle-in-transaction session timeout."""
_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "database is locked",
    "connection is closed",
    "connection was closed",
)
"""Lower-case message fragments of SQLite and driver errors that mean the same."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it wraps (SQLAlchemy's ``orig``, causes, contexts)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None]
        todo += [current.__cause__, current.__context__]


def database_fault(exc: BaseException) -> str | None:
    """A short reason when ``exc`` means the database is unavailable, else ``None``."""
    for current in _chain(exc):
        if isinstance(current, TimeoutError) or type(current).__name__ == "TimeoutError":
            # the builtin (asyncpg's command_timeout) and SQLAlchemy's pool checkout timeout
            return "the database did not answer in time"
        if isinstance(current, OSError):
            return f"the database cannot be reached ({type(current).__name__})"
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate in _SQLSTATES or sqlstate.startswith(_SQLSTATE_CLASSES)
        ):
            return f"the database refused the work (SQLSTATE {sqlstate})"
        if getattr(current, "connection_invalidated", False):
            return "the connection to the database was lost"
        message = str(current).lower()
        for fragment in _MESSAGES:
            if fragment in message:
                return fragment
    return None
