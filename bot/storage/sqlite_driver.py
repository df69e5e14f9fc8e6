"""SQLAlchemy's aiosqlite driver, with at most one trip to the SQLite thread per statement.

aiosqlite runs every call on its connection's thread and hands the result back to the event
loop; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch,
close). Each trip costs a future, a queue hand-off and a wake-up of the loop, and under load the
two threads trade the GIL for every one: a quarter of the bot's CPU per job went there. Here a
statement runs, is fetched and closed in one call on that thread; a transaction's BEGIN goes in
the call of its first statement (`begin_with_next_statement`); once a write transaction holds
SQLite's write lock, its further statements run at once on the loop's thread, with no trip at
all (see INLINE_PARAMETER_BYTES); and the pool's rollback of a connection it takes back is
skipped when no transaction is open (after every commit).

Passed to the engine as its DBAPI module (`create_async_engine(..., module=one_trip_dbapi())`);
the dialect, its SQL and its error handling stay SQLAlchemy's own.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# Inside a write transaction (BEGIN IMMEDIATE went through: this connection holds SQLite's write
# lock) a statement runs on the calling thread, the event loop's, without a trip: it cannot wait
# for a lock, the few pages it touches are as a rule in memory (WAL, synchronous=NORMAL: no fsync
# until a checkpoint, which runs in COMMIT, on the SQLite thread), and it takes microseconds where
# a trip costs the loop a hand-off and the transaction a wait behind every other ready task while
# it holds the lock. A statement with a parameter above this size (an image) still makes the trip,
# and so does a DELETE (freeing a set's kept images rewrites thousands of pages).
INLINE_PARAMETER_BYTES = 64 * 1024

_Outcome = tuple[Any, int, int | None, list[Any] | None, bool]


def _run(connection: sqlite3.Connection, begin: str | None, operation: str, parameters: Any) -> _Outcome:
    """On the SQLite thread: the statement's description, counts and rows, its cursor closed."""
    if begin is not None:
        connection.execute(begin)
    cursor = connection.execute(operation) if parameters is None else connection.execute(operation, parameters)
    try:
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows, connection.in_transaction
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, begin: str | None, operation: str, parameters: Any) -> _Outcome:
    if begin is not None:
        connection.execute(begin)
    cursor = connection.executemany(operation, parameters)
    try:
        return None, cursor.rowcount, cursor.lastrowid, None, connection.in_transaction
    finally:
        cursor.close()


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """Holds the outcome of its last statement; no aiosqlite cursor behind it."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:  # no trip to open one
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # DBAPI: None before an INSERT

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor closed on the SQLite thread."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._take(_run, operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._take(_run_many, operation, seq_of_parameters)

    def _take(self, work: Any, operation: Any, parameters: Any) -> None:
        connection = cast(_Connection, self._adapt_connection)
        begin, connection._begin = connection._begin, None
        try:
            if connection._holds_write_lock and work is _run and _small(parameters) and not _deletes(operation):
                outcome: _Outcome = await_(_at_once(work, self._connection._conn, operation, parameters))
            else:
                outcome = await_(self._connection._execute(work, self._connection._conn, begin, operation, parameters))
        except Exception as error:
            connection._in_transaction = True  # unknown after a failure: let a rollback run
            connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows, connection._in_transaction = outcome
        if begin is not None:
            connection._holds_write_lock = connection._in_transaction and begin.upper().endswith("IMMEDIATE")
        if rows is not None:
            self._rows = collections.deque(rows)


async def _at_once(work: Any, connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """`work` on this thread, as a coroutine that never suspends: SQLAlchemy's async layer insists
    on being handed an awaitable, and awaiting this one costs no trip through the event loop."""
    return work(connection, None, operation, parameters)  # type: ignore[no-any-return]


def _deletes(operation: str) -> bool:
    """A DELETE may free thousands of pages (a set's kept images: 150 MB took 180-240 ms)."""
    return operation.lstrip()[:6].upper() == "DELETE"


def _small(parameters: Any) -> bool:
    """No parameter big enough (an image) that copying it into SQLite's pages would be felt."""
    return parameters is None or not any(
        isinstance(value, (bytes, str)) and len(value) > INLINE_PARAMETER_BYTES for value in parameters)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin", "_holds_write_lock", "_in_transaction")
    _cursor_cls = _Cursor  # type: ignore[assignment]  # a subclass; mypy reads the base as exact

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._in_transaction = False
        self._holds_write_lock = False  # inside a BEGIN IMMEDIATE transaction: see INLINE_PARAMETER_BYTES
        self._begin: str | None = None

    def begin_with_next_statement(self, begin: str) -> None:
        """Open a transaction with `begin` (BEGIN, BEGIN IMMEDIATE) in the trip of its first
        statement. BEGIN IMMEDIATE then takes the write lock a moment later than it would alone,
        but before anything is read or written; a transaction that runs nothing costs no trip."""
        self._begin = begin

    def commit(self) -> None:
        if self._begin is not None:  # nothing ran: there is nothing to commit
            self._begin = None
            return
        self._holds_write_lock = False
        super().commit()
        self._in_transaction = False

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back: after a commit there is nothing
        # to undo, and asking the SQLite thread anyway would cost a trip.
        self._begin = None
        self._holds_write_lock = False
        if self._in_transaction:
            super().rollback()
            self._in_transaction = False


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does: never hold up the exit
        return _Connection(self, await_(connection))


def one_trip_dbapi() -> Any:
    """The DBAPI module for `create_async_engine("sqlite+aiosqlite://…", module=...)`."""
    return _DBAPI(aiosqlite, sqlite3)
