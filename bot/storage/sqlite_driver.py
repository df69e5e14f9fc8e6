"""SQLAlchemy's aiosqlite driver, with as few trips to the SQLite thread as WAL allows.

aiosqlite runs every call on its connection's thread and hands the result back to the event
loop; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch,
close). Each trip costs a future, a queue hand-off and a wake-up of the loop, and under load the
two threads trade the GIL for every one: a quarter of the bot's CPU per job went there. Here:

- a statement runs, is fetched and closed in one call on that thread;
- a write transaction (BEGIN IMMEDIATE; the Database lets one run at a time per process) takes
  SQLite's write lock on the loop's thread when it is free that instant, else waits for it on
  the SQLite thread (another process holds it); once held, its small statements run on the
  loop's thread too (see INLINE_PARAMETER_BYTES), and so does its COMMIT: a write transaction
  of small statements makes no trip at all;
- a read's BEGIN goes in the call of its first statement, its ROLLBACK runs on the loop's
  thread, and the pool's rollback of an idle connection is skipped;
- the WAL is checkpointed on the SQLite thread every CHECKPOINT_PAGES (the connections turn
  SQLite's own checkpoint off: it would run, and fsync, inside a COMMIT).

All of this needs WAL (the connection is told the journal mode it got); without it every call
makes the trip, as before. Passed to the engine as its DBAPI module
(`create_async_engine(..., module=one_trip_dbapi())`); the dialect, its SQL and its error
handling stay SQLAlchemy's own.
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
# until a checkpoint, which the driver runs on the SQLite thread), and it takes microseconds where
# a trip costs the loop a hand-off and the transaction a wait behind every other ready task while
# it holds the lock. A statement whose values add up to more than this (an image) makes the trip,
# and so does a DELETE (freeing a set's kept images rewrites thousands of pages); the COMMIT of a
# transaction with such a statement makes it too (it appends all those pages to the WAL).
INLINE_PARAMETER_BYTES = 64 * 1024

# How long a statement waits for a lock another connection holds (PRAGMA busy_timeout).
BUSY_TIMEOUT_MS = 30_000
# The bot's connections turn SQLite's automatic checkpoint off (it would run inside a COMMIT,
# which here runs on the loop's thread): the driver checkpoints on the SQLite thread instead,
# after about as many written pages as SQLite's own default (1,000), or every CHECKPOINT_COMMITS.
CHECKPOINT_PAGES = 1000
CHECKPOINT_COMMITS = 200
_PAGE_BYTES = 4096

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


def _begin_at_once(connection: sqlite3.Connection, begin: str) -> bool:
    """`begin` (BEGIN IMMEDIATE) on this thread if the write lock is free this instant; False if
    another process holds it (then the caller waits for it on the SQLite thread, not here)."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute(begin)
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


def _checkpoint(connection: sqlite3.Connection) -> None:
    """On the SQLite thread: copy what the WAL holds into the database file, as far as readers
    allow (PASSIVE: waits for nobody)."""
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


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
        await_(self.execute_async(operation, parameters))

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        await_(self._take(_run_many, operation, seq_of_parameters))

    async def execute_async(self, operation: Any, parameters: Any = None) -> None:
        """`execute` for a caller on the event loop (bot/storage/prepared.py): no greenlet switch.
        Raises the adapter's DBAPI errors, as `execute` does."""
        await self._take(_run, operation, parameters)

    async def _take(self, work: Any, operation: Any, parameters: Any) -> None:
        connection = cast(_Connection, self._adapt_connection)
        raw = self._connection._conn
        begin, connection._begin = connection._begin, None
        try:
            if begin is not None and connection._wal and _takes_write_lock(begin) and _begin_at_once(raw, begin):
                begin, connection._holds_write_lock, connection._in_transaction = None, True, True
            size = _value_bytes(parameters) if work is _run else 0
            light = work is _run and size <= INLINE_PARAMETER_BYTES and not _deletes(operation)
            if connection._holds_write_lock and light:
                outcome: _Outcome = work(raw, None, operation, parameters)  # here, on the loop's thread
            else:
                connection._heavy = connection._heavy or not light
                outcome = await self._connection._execute(work, raw, begin, operation, parameters)
        except Exception as error:
            connection._in_transaction = True  # unknown after a failure: let a rollback run
            connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows, connection._in_transaction = outcome
        if begin is not None:
            connection._holds_write_lock = connection._wal and connection._in_transaction and _takes_write_lock(begin)
        if connection._holds_write_lock and self._description is None:  # it wrote
            connection.dbapi.note_written(size)
        if rows is not None:
            self._rows = collections.deque(rows)


def _takes_write_lock(begin: str) -> bool:
    return begin.upper().endswith("IMMEDIATE")


def _deletes(operation: str) -> bool:
    """A DELETE may free thousands of pages (a set's kept images: 150 MB took 180-240 ms)."""
    return operation.lstrip()[:6].upper() == "DELETE"


def _value_bytes(parameters: Any) -> int:
    """What a statement's text and binary values add up to (an image makes it large; it comes as
    the `memoryview` SQLAlchemy's LargeBinary binds)."""
    if not parameters:
        return 0
    total = 0
    for value in parameters:
        if isinstance(value, (str, bytes, bytearray)):
            total += len(value)
        elif isinstance(value, memoryview):
            total += value.nbytes
    return total


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin", "_heavy", "_holds_write_lock", "_in_transaction", "_wal")
    _cursor_cls = _Cursor  # type: ignore[assignment]  # a subclass; mypy reads the base as exact
    dbapi: _DBAPI

    def __init__(self, dbapi: _DBAPI, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._in_transaction = False
        self._holds_write_lock = False  # inside a BEGIN IMMEDIATE transaction: see INLINE_PARAMETER_BYTES
        self._heavy = False  # the write transaction sent a statement to the SQLite thread (an image, a DELETE)
        self._begin: str | None = None
        self._wal = False  # until `journal_mode_is` says so: all of the above needs WAL

    def journal_mode_is(self, mode: str) -> None:
        """What `PRAGMA journal_mode` answered. Only in WAL does a COMMIT not wait for readers,
        nor a write append to anything but the log: elsewhere (an in-memory database, a file
        system without shared memory) every statement, COMMIT and ROLLBACK goes to SQLite's
        thread."""
        self._wal = mode.lower() == "wal"

    def begin_with_next_statement(self, begin: str) -> None:
        """Open a transaction with `begin` (BEGIN, BEGIN IMMEDIATE) in the trip of its first
        statement. BEGIN IMMEDIATE then takes the write lock a moment later than it would alone,
        but before anything is read or written; a transaction that runs nothing costs no trip."""
        self._begin = begin

    def commit(self) -> None:
        if self._begin is not None:  # nothing ran: there is nothing to commit
            self._begin = None
            return
        # A write transaction of small statements commits here, on the loop's thread: WAL and
        # synchronous=NORMAL make a COMMIT a few appends to the WAL, no fsync, and the checkpoint
        # that would fsync is the driver's (CHECKPOINT_PAGES), on the SQLite thread. One that wrote
        # an image or deleted commits there too: its pages may be many.
        at_once = self._holds_write_lock and not self._heavy
        self._holds_write_lock = self._heavy = False
        if at_once:
            try:
                self._connection._conn.commit()
            except Exception as error:
                self._handle_exception(error)
        else:
            super().commit()
        self._in_transaction = False
        if self.dbapi.checkpoint_due():
            try:
                await_(self._connection._execute(_checkpoint, self._connection._conn))
            except Exception as error:
                self._handle_exception(error)

    def rollback(self) -> None:
        # The pool rolls back every connection it takes back: after a commit there is nothing to
        # undo. Otherwise, in WAL, the loop's thread does it: ending a read, or discarding a write
        # transaction's pages (the log's index forgets them), is quick and waits for no lock.
        self._begin = None
        self._holds_write_lock = self._heavy = False
        if not self._in_transaction:
            return
        self._in_transaction = False
        if not self._wal:
            super().rollback()
            return
        try:
            self._connection._conn.rollback()
        except Exception as error:
            self._handle_exception(error)


    async def _terminate_graceful_close(self) -> None:
        """Close the connection and end its thread, once, whichever of SQLAlchemy's two ways of
        terminating a connection comes first.

        SQLAlchemy terminates a connection whose task was cancelled (a shutdown) by awaiting a
        shielded graceful close and, when the wait is cancelled, forcing it (aiosqlite's
        `stop()`: end the thread). aiosqlite's `close()` queues its work and then a stop of its
        own; once a forced stop has ended the thread, whatever it queues is never run and the
        close waits for ever: the process hung at exit. `stop()` alone closes the SQLite
        connection on its thread and ends it, and does nothing twice (`_running`)."""
        connection = self._connection
        if not connection._running:
            return  # stopped already: the thread closed the SQLite connection on its way out
        finished = connection.stop()
        if finished is not None:
            await finished


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    """One per engine: its connections share one database file, so they share its WAL count."""

    def __init__(self, aiosqlite: Any, sqlite: Any) -> None:
        super().__init__(aiosqlite, sqlite)
        self._pages_written = 0  # an estimate, since the last checkpoint
        self._commits = 0

    def note_written(self, value_bytes: int) -> None:
        """A write statement: a page, and one more for each page its values fill."""
        self._pages_written += 1 + value_bytes // _PAGE_BYTES

    def checkpoint_due(self) -> bool:
        """After a commit: is it time to checkpoint? (Then the count starts again.)"""
        self._commits += 1
        if self._pages_written < CHECKPOINT_PAGES and self._commits < CHECKPOINT_COMMITS:
            return False
        self._pages_written = self._commits = 0
        return True

    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does: never hold up the exit
        return _Connection(self, await_(connection))


def one_trip_dbapi() -> Any:
    """The DBAPI module for `create_async_engine("sqlite+aiosqlite://…", module=...)`."""
    return _DBAPI(aiosqlite, sqlite3)
