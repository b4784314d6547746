"""What every SQL unit of work shares: the connector protocols, the transaction base and a
few statement helpers."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import (
    FunctionElement,
    Select,
    String,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import NullType

from cueflow.sql.rows import RecordBuilder, Row
from cueflow.sql.tables import (
    cues,
    executions,
)
from cueflow.store import Duplicate

if TYPE_CHECKING:
    from cueflow.pulse import Pulse

R = TypeVar("R")


class Connection(Protocol):
    """An open transaction that runs statements (sync drivers wrap theirs in coroutines)."""

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement and return SQLAlchemy's buffered result."""


class Connector(Protocol):
    """The database-specific half of a SQL store, provided by a store plugin."""

    name: str
    skip_locked: bool
    """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` is available (several writers)."""
    autocommits: bool
    """Whether ``begin(single_statement=True)`` runs its statements outside a transaction."""

    def begin(self, single_statement: bool = False) -> Any:
        """An async context manager yielding a :class:`Connection` inside a transaction; with
        ``single_statement`` (the unit of work runs one statement) the connector may leave the
        transaction out where the database makes each statement atomic by itself."""

    def insert(self, table: Any) -> Any:
        """The dialect's ``insert`` construct (one that has ``on_conflict_do_nothing``)."""

    async def open(self) -> None:
        """Connect and migrate."""

    async def close(self) -> None:
        """Disconnect."""

    async def notify(self, conn: Connection) -> None:
        """Signal other nodes that schedules changed, inside ``conn``'s transaction."""

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Call ``callback`` when another node signals a schedule change, until cancelled (see
        :meth:`cueflow.store.Store.listen`)."""


_UNIQUE_HINTS = {
    "email": "email",
    "slug": "slug",
    "uq_cues_user_name": "name",
    "cues.user_id": "name",
}


def _duplicate(exc: IntegrityError) -> Duplicate:
    text = str(exc.orig)
    for hint, constraint in _UNIQUE_HINTS.items():
        if hint in text:
            return Duplicate(constraint)
    raise exc


def _lock(stmt: Select[Any], connector: Connector, of: Any = None) -> Select[Any]:
    """``stmt`` locking the rows it reads of ``of`` (by default its first FROM), skipping rows
    others hold, on a store that can. Hot paths name ``of``: finding the FROM compiles the
    whole statement."""
    if connector.skip_locked:
        return stmt.with_for_update(
            skip_locked=True, of=of if of is not None else stmt.get_final_froms()[0]
        )
    return stmt


class _InBound(FunctionElement[Any]):
    """``column IN`` a list bound at execution (see :func:`in_bound`).

    Untyped on purpose: a ``Boolean`` element is compared ``= 1`` in a ``WHERE`` on a dialect
    without a native boolean (SQLite), and ``id IN (...) = 1`` is a condition no index serves,
    which turned an outcome's keyed updates into full scans."""

    inherit_cache = True
    type = NullType()


@compiles(_InBound)
def _expanding_in(element: _InBound, compiler: Any, **kw: Any) -> str:
    column, param = element.clauses
    return str(compiler.process(column.in_(bindparam(param.key, expanding=True)), **kw))


@compiles(_InBound, "postgresql")
def _equals_any(element: _InBound, compiler: Any, **kw: Any) -> str:
    column, param = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(param, **kw)})"


def in_bound(column: Any, name: str) -> Any:
    """``column`` is one of the strings bound as ``name`` when the statement runs. On
    PostgreSQL ``column = ANY(:name)``, one array parameter: the statement's SQL stays the
    same whatever the list's length, where an expanding ``IN`` is rendered again at every
    execution (SQLAlchemy's post-compile step, a large part of a hot statement's CPU) and is
    another prepared statement for each length. Elsewhere the expanding ``IN``."""
    return _InBound(column, bindparam(name, type_=ARRAY(String())))


def any_equal(column: Any, values: Collection[str]) -> Any:
    """``column`` is one of ``values`` (fixed in the statement), as equalities bound once,
    not as an ``IN`` list rendered again at every execution: for conditions off the indexes
    (a ``CASE`` branch)."""
    return or_(*(column == value for value in values))


def _task_in(tasks: Collection[str]) -> Any:
    """Executions whose cue's ``task`` is one of ``tasks`` (a correlated key lookup, so the
    execution indexes still drive the query)."""
    return (
        select(literal(1))
        .where(cues.c.id == executions.c.cue_id, cues.c.task.in_(list(tasks)))
        .exists()
    )


class Unindexed(FunctionElement[str]):
    """A text column that the planner may not use an index for: ``+column`` on SQLite,
    ``(column || '')`` on PostgreSQL, as is elsewhere."""

    inherit_cache = True


@compiles(Unindexed)
def _plain(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(Unindexed, "sqlite")
def _unary_plus(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


@compiles(Unindexed, "postgresql")
def _concatenated(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return "(" + str(compiler.process(element.clauses, **kw)) + " || '')"


def unindexed(column: Any) -> Any:
    """``column`` (text) kept off the indexes (:class:`Unindexed`), typed as it is: for a
    condition that only re-checks rows found by key, which a planner without statistics (a
    new database, or a table that grew since the last ``ANALYZE``) may otherwise serve from an
    index on that column: SQLite read every row of a status to find ten; PostgreSQL read every
    execution of the account to write one outcome (an index led by ``user_id`` taken for the
    primary key)."""
    return type_coerce(Unindexed(column), column.type)


def owned_by(table: Any, user_id: Any) -> Any:
    """``table``'s row belongs to ``user_id`` (a value or a bound parameter), as a re-check of
    a row found by its key (:func:`unindexed`)."""
    return unindexed(table.c.user_id) == user_id


def _count_if(condition: Any) -> Any:
    """``SUM(CASE WHEN condition THEN 1 ELSE 0 END)``: a count that fits beside others."""
    return func.sum(case((condition, 1), else_=0))


class _DialectlessType:
    name = "sqlite"


_Dialectless: Any = _DialectlessType()


_PREPARED: dict[tuple[Any, ...], Any] = {}


def bound_values(table: Any, columns: Collection[str]) -> dict[str, Any]:
    """``SET`` values for ``columns`` of ``table`` as bound parameters named ``v_<column>``,
    typed by their columns (for statements built once by :meth:`TxBase._prepared`)."""
    return {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}


def value_params(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters :func:`bound_values` names, for ``values``."""
    return {f"v_{c}": v for c, v in values.items()}


class TxBase:
    """An open transaction and the helpers its statements use."""

    def __init__(self, conn: Connection, connector: Connector, atomic: bool = True) -> None:
        self.conn = conn
        self.connector = connector
        self.atomic = atomic

    def _prepared(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The statement ``build()`` makes, built once per dialect and ``key``.

        Hot paths (poll, claim, outcome) run statements whose only variable parts are bound
        parameters. Building a SQLAlchemy statement and computing its cache key costs more
        than SQLite takes to run it; a statement built once keeps its cache key, so each
        execution only binds values."""
        full_key = (self.connector.name, *key)
        stmt = _PREPARED.get(full_key)
        if stmt is None:
            stmt = _PREPARED[full_key] = build()
        return stmt

    async def _one(self, stmt: Any, params: Any = None) -> Row | None:
        row: Row | None = (await self.conn.execute(stmt, params)).mappings().first()
        return row

    async def _all(self, stmt: Any, params: Any = None) -> list[Row]:
        return list((await self.conn.execute(stmt, params)).mappings().all())

    async def _record(self, make: Callable[[Row], R], stmt: Any, params: Any = None) -> R | None:
        """The first row of ``stmt`` as the record ``make`` builds, or ``None``."""
        result = await self.conn.execute(stmt, params)
        if isinstance(make, RecordBuilder):
            keys = tuple(result.keys())
            row = result.first()
            return None if row is None else make.many(keys, [row])[0]
        mapping = result.mappings().first()
        return None if mapping is None else make(mapping)

    async def _records(self, make: Callable[[Row], R], stmt: Any, params: Any = None) -> list[R]:
        """Every row of ``stmt`` as the record ``make`` builds."""
        result = await self.conn.execute(stmt, params)
        if isinstance(make, RecordBuilder):
            return make.many(tuple(result.keys()), result.all())
        return [make(row) for row in result.mappings().all()]

    async def _count(self, stmt: Select[Any]) -> int:
        counted = select(func.count()).select_from(stmt.order_by(None).subquery())
        return int((await self.conn.execute(counted)).scalar_one())
