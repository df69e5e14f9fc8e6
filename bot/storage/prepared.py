"""Statements every job runs, compiled once and run on the driver's cursor.

SQLAlchemy's `conn.execute(statement, parameters)` costs about 85 µs of CPU a statement before
and after the driver's own 5-50 µs, even with its compiled cache: a cache key, an execution
context, parameter and result metadata. A job runs about ten such statements. `Prepared`
keeps the compiled form per dialect (and, for an INSERT, per set of columns given) and does only
what these statements need: the parameters in the dialect's order through their types' bind
processors, the rows through their result processors.
What stays SQLAlchemy's: the SQL, the types, the transaction (the statement runs inside the
caller's, on its connection), the `before_cursor_execute` event (the bot counts statements with
it) and errors, which come out as SQLAlchemy's (`IntegrityError`, …), a lost connection
invalidated as `execute` would.

Only for statements built once (a module constant, or what a cached builder returns) with bound
parameters: no expanding IN, no computed parameters (refused), no Python-side column defaults
(the tables have none). `tests/storage/test_prepared.py` compares results with `execute`'s; the
storage and quota tests run every prepared statement on both backends. Inside a transaction the
statement is awaited through the driver's own coroutine, without the greenlet switch SQLAlchemy's
async layer makes (`_async_execute`; for asyncpg a private method of SQLAlchemy's adapter, which
the PostgreSQL tests exercise); elsewhere it runs in `run_sync`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_cursor
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Rows:
    """What a prepared statement returned: its rows (if any) and how many rows it touched."""

    keys: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    rowcount: int

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]

    def first_mapping(self) -> dict[str, Any] | None:
        return dict(zip(self.keys, self.rows[0], strict=True)) if self.rows else None

    def one_mapping(self) -> dict[str, Any]:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return dict(zip(self.keys, self.rows[0], strict=True))

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class _Compiled:
    """One statement compiled for one dialect and one set of parameter names."""

    __slots__ = ("_binds", "_keys", "_result_types", "_results", "sql")

    def __init__(self, compiled: SQLCompiler) -> None:
        self.sql = compiled.string
        if compiled.escaped_bind_names or any(bind.expanding or bind.callable for bind in compiled.binds.values()):
            raise ValueError("not for a statement whose parameters SQLAlchemy works out at each execution "
                             "(expanding, escaped or computed)")
        processors = compiled._bind_processors
        # Per position: the key a caller gives it by, its name, a value of its own (a literal),
        # whether it must be given, and its type's bind processor (None: the value as it is).
        self._binds: list[tuple[str, str, Any, bool, _Processor]] = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            self._binds.append((bind.key, name, bind.value, bind.required, processors.get(name)))  # type: ignore[arg-type]
        self._keys = tuple(entry[0] for entry in compiled._result_columns)
        self._result_types = [entry[3] for entry in compiled._result_columns]
        self._results: list[_Processor] | None = None  # from the first cursor description

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values in the dialect's order, each through its type's bind processor."""
        out = []
        for key, name, own, required, processor in self._binds:
            if key in values:
                value = values[key]
            elif name in values:
                value = values[name]
            elif required:
                raise KeyError(f"no value for the bound parameter {key!r}")
            else:
                value = own
            out.append(value if processor is None else processor(value))
        return tuple(out)

    def rows(self, dialect: Dialect, description: Sequence[Any], raw: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._results is None:
            if len(description) != len(self._result_types):
                raise RuntimeError(f"{len(description)} columns came back, {len(self._result_types)} expected")
            self._results = [type_._cached_result_processor(dialect, column[1])
                             for type_, column in zip(self._result_types, description, strict=True)]
        processors = self._results
        if not any(processors):
            return [tuple(row) for row in raw]
        return [tuple(value if processor is None else processor(value)
                      for processor, value in zip(processors, row, strict=True)) for row in raw]

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys


class Prepared:
    """A statement built once; `await prepared.run(conn, {...})` runs it in `conn`'s transaction."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}
        self._is_insert = bool(getattr(statement, "is_insert", False))

    def _for(self, dialect: Dialect, names: frozenset[str]) -> _Compiled:
        key = (dialect.name, names if self._is_insert else frozenset())
        found = self._compiled.get(key)
        if found is None:
            # An INSERT's columns are the ones given (as `execute` compiles it).
            column_keys = sorted(names) if self._is_insert else None
            compiled = self.statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
            found = self._compiled[key] = _Compiled(compiled)
        return found

    async def run(self, conn: AsyncConnection, values: Mapping[str, Any] | None = None) -> Rows:
        values = values or {}
        sync = conn.sync_connection
        if sync is None or sync.invalidated or not sync.in_transaction():
            return await conn.run_sync(self._run, values)  # (re)connecting or beginning may do I/O
        dbapi_connection = sync.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        execute = _async_execute(cursor)
        if execute is None:
            cursor.close()
            return await conn.run_sync(self._run, values)
        compiled, sql, parameters = self._prepare(sync, cursor, values)
        try:
            await execute(sql, parameters)
        except BaseException as error:
            cursor.close()
            # Translated to SQLAlchemy's error classes; a lost connection is invalidated (which
            # may do I/O: in a greenlet, as SQLAlchemy's own calls are).
            await conn.run_sync(_translate, error, sql, parameters, cursor)
            raise  # not reached: the call above raises
        return self._result(sync.dialect, compiled, cursor)

    def _run(self, conn: Connection, values: Mapping[str, Any]) -> Rows:
        """`run` in a greenlet, through the DBAPI cursor's blocking `execute`."""
        if not conn.in_transaction():
            conn.begin()  # as `execute` autobegins: the connection's end rolls it back
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        compiled, sql, parameters = self._prepare(conn, cursor, values)
        try:
            cursor.execute(sql, parameters)
        except BaseException as error:
            cursor.close()
            _translate(conn, error, sql, parameters, cursor)
            raise  # not reached: the call above raises
        return self._result(conn.dialect, compiled, cursor)

    def _prepare(self, conn: Connection, cursor: Any, values: Mapping[str, Any]) -> tuple[_Compiled, str, Any]:
        """The compiled form, its SQL and parameters, as the statement listeners leave them."""
        compiled = self._for(conn.dialect, frozenset(values))
        sql, parameters = compiled.sql, compiled.parameters(values)
        if conn._has_events or conn.engine._has_events:
            for listen in conn.dispatch.before_cursor_execute:
                sql, parameters = listen(conn, cursor, sql, parameters, None, False)
        return compiled, sql, parameters

    @staticmethod
    def _result(dialect: Dialect, compiled: _Compiled, cursor: Any) -> Rows:
        try:
            description = cursor.description
            raw = cursor.fetchall() if description else []  # held by the cursor already: no I/O
            rowcount = cursor.rowcount
        finally:
            cursor.close()
        if not description:
            return Rows((), [], rowcount)
        return Rows(compiled.keys, compiled.rows(dialect, description, raw), rowcount)


def _translate(conn: Connection, error: BaseException, sql: str, parameters: Any, cursor: Any) -> None:
    """Raise `error` as `execute` would: a DBAPI error as SQLAlchemy's class (`IntegrityError`, …),
    the connection invalidated if it was lost."""
    conn._handle_dbapi_exception(error, sql, parameters, cursor, None)


def _async_execute(cursor: Any) -> Callable[[str, Any], Awaitable[Any]] | None:
    """The cursor's own coroutine behind its blocking `execute`, where the driver has one: the bot's
    SQLite driver (`execute_async`) and SQLAlchemy's asyncpg adapter (`_prepare_and_execute`, which
    also opens the transaction on its first statement). Awaited from the event loop, it saves the
    greenlet switch `run_sync` costs (~15 µs a statement)."""
    execute = getattr(cursor, "execute_async", None)
    if execute is None and isinstance(cursor, AsyncAdapt_asyncpg_cursor):
        execute = cursor._prepare_and_execute
    return execute


_PREPARED: dict[int, Prepared] = {}


async def run(conn: AsyncConnection, statement: Executable, values: Mapping[str, Any] | None = None) -> Rows:
    """Run a statement built once (a module constant, or one a cached builder returns) as
    `Prepared`, in `conn`'s transaction. Keyed by the statement object itself, which must live as
    long as the process: never pass one built per call."""
    prepared = _PREPARED.get(id(statement))
    if prepared is None or prepared.statement is not statement:
        prepared = _PREPARED[id(statement)] = Prepared(statement)
    return await prepared.run(conn, values)
