"""One database handle for SQLite (default) and PostgreSQL, chosen by DATABASE_URL."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from sqlalchemy import ColumnElement, Executable, Table, event, literal
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.storage.sqlite_driver import BUSY_TIMEOUT_MS, one_trip_dbapi

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x5EED_0001  # pg_advisory_xact_lock key serialising schema upgrades
# The newest revision in migrations/versions (a test keeps the two in step). A start that finds
# the database there skips alembic: importing it would cost every process about 11 MiB.
SCHEMA_HEAD = "0007"

Dialect = Literal["sqlite", "postgresql"]


def async_url(database_url: str) -> str:
    """Map the public `sqlite:///…` / `postgresql://…` forms to SQLAlchemy's async drivers."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.drivername in ("sqlite", "sqlite+aiosqlite"):
        return url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if url.drivername in ("postgresql", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database scheme {url.drivername!r}")


@functools.cache
def upsert(dialect: str, table: Table, *, key: tuple[str, ...], update: tuple[str, ...] = ()) -> Executable:
    """INSERT the row given at execution; where a row with the same `key` exists, set its `update`
    columns to the given values instead (or, without `update`, leave it alone; with no `key`
    either, a row that would break any unique constraint is left out: rowcount 0). One statement
    on either backend (ON CONFLICT), built once per table and shape: run it with the row's values,
    `conn.execute(upsert(...), values)`."""
    statement = sqlite_insert(table) if dialect == "sqlite" else postgresql_insert(table)
    if not update:
        return statement.on_conflict_do_nothing(index_elements=list(key) or None)
    return statement.on_conflict_do_update(index_elements=list(key),
                                           set_={column: statement.excluded[column] for column in update})


def json_text(value: Any) -> str:
    """A JSON column's value as text, as `json.dumps` would accept it (keys that are not strings
    become strings)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def one_of(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (…)` for a fixed set of values, one bound parameter each. `column.in_(list)`
    makes an "expanding" parameter that SQLAlchemy rewrites into the SQL at every execution,
    which doubles a small statement's cost; this compiles once."""
    return column.in_([literal(value, column.type) for value in values])


def migration_config() -> Config:
    from alembic.config import Config  # see SCHEMA_HEAD

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class Database:
    """Owns the engine and the schema version.

    Writes that must be atomic against concurrent writers use `transaction()`: on SQLite it
    takes the write lock up front (`BEGIN IMMEDIATE`), so read-then-write sequences such as a
    quota reservation cannot interleave; on PostgreSQL callers lock the rows they need.
    """

    def __init__(self, database_url: str, **engine_options: Any) -> None:
        self.url = async_url(database_url)
        self.dialect: Dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # JSON columns (a job's request, delivery, images) through orjson: the standard library's
        # encoder was 1-2 % of a job's CPU.
        engine_options.setdefault("json_serializer", json_text)
        engine_options.setdefault("json_deserializer", orjson.loads)
        if self.dialect == "sqlite":
            self._ensure_sqlite_directory()
            # The write transaction's statements run on the loop's thread (sqlite_driver.py), one at a
            # time, never beside a statement on SQLite's own thread.
            engine_options.setdefault("connect_args", {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
            engine_options.setdefault("module", one_trip_dbapi())  # at most one trip to SQLite's thread per statement
        else:
            engine_options.setdefault("pool_size", 10)
            engine_options.setdefault("max_overflow", 20)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_options)
        # SQLite allows one writer; queueing writers here is far cheaper than SQLite's
        # sleep-and-retry busy handler (BEGIN IMMEDIATE still guards other processes).
        self._write_lock = asyncio.Lock()
        # The same pool; its connections begin with the write lock (set once, not per transaction).
        self._writer: AsyncEngine = self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        # Connections kept between transactions: on SQLite the writer's one (the write lock lets
        # one writer run); on PostgreSQL up to the pool's size, and as many in autocommit.
        kept = 1 if self.dialect == "sqlite" else int(engine_options.get("pool_size", 5))
        self._transactions = _KeptConnections(self._writer if self.dialect == "sqlite" else self.engine, kept)
        self._single_statements = (
            self._transactions if self.dialect == "sqlite"
            else _KeptConnections(self.engine.execution_options(isolation_level="AUTOCOMMIT"), kept)
        )
        if self.dialect == "sqlite":
            self._configure_sqlite()

    def _ensure_sqlite_directory(self) -> None:
        database = make_url(self.url).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.journal_mode_is(cursor.fetchone()[0])  # WAL, unless the file cannot have it
            cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, no fsync per commit
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # the driver checkpoints (sqlite_driver.py)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            mode = connection.get_execution_options().get("sqlite_begin", "BEGIN")
            connection.connection.dbapi_connection.begin_with_next_statement(mode)  # type: ignore[union-attr]

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest version (alembic revisions in `migrations/versions`),
        or to an older `revision`."""
        if revision == "head" and await self.schema_revisions() == [SCHEMA_HEAD]:
            return
        from alembic import command  # see SCHEMA_HEAD

        config = migration_config()

        def upgrade(connection: Connection) -> None:
            if connection.dialect.name == "postgresql":
                # Processes starting together on one database take turns: the first migrates,
                # the others then find the schema at head (held until this transaction ends).
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        async with self.engine.connect() as connection:
            # SQLite: the write lock up front, so a second process waits instead of racing.
            connection = await connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            async with connection.begin():
                await connection.run_sync(upgrade)

    async def schema_revisions(self) -> list[str]:
        """The revisions alembic recorded in the database; none before its first migration."""
        try:
            async with self.engine.connect() as connection:
                return list((await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars())
        except DBAPIError:  # no alembic_version table yet
            return []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction that serialises against other writers on SQLite."""
        if self.dialect == "postgresql":
            async with self._transactions.transaction() as connection:
                yield connection
            return
        async with self._write_lock, self._transactions.transaction() as connection:
            yield connection

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[AsyncConnection]:
        """For one write statement, atomic on its own: on PostgreSQL it runs in autocommit (its
        own implicit transaction: no BEGIN and COMMIT, one round trip instead of three); on SQLite
        in a write `transaction()` (the write lock)."""
        if self.dialect == "postgresql":
            async with self._single_statements.transaction() as connection:
                yield connection
            return
        async with self.transaction() as connection:
            yield connection

    @asynccontextmanager
    async def join(self, connection: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """Work inside the caller's transaction when given one, else in a new write transaction.

        Lets one transaction span several stores, e.g. a job row and its quota reservation.
        """
        if connection is not None:
            yield connection
            return
        async with self.transaction() as own:
            yield own

    async def close(self) -> None:
        await self._transactions.close()
        await self._single_statements.close()
        await self.engine.dispose()


class _KeptConnections:
    """Connections of one engine kept checked out from the pool between transactions.

    Taking a connection from SQLAlchemy's pool and giving it back cost about 200 µs of CPU a
    transaction (half of a small one's), and every job makes three. A transaction that ends well
    leaves its connection here for the next one, up to `limit`; one that fails closes it, as
    `engine.begin()` would, so a broken connection is never handed out again."""

    def __init__(self, engine: AsyncEngine, limit: int) -> None:
        self._engine = engine
        self._limit = limit
        self._idle: list[AsyncConnection] = []
        self._closed = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        connection = self._idle.pop() if self._idle else await self._engine.connect()
        try:
            async with connection.begin():
                yield connection
        except BaseException:
            await asyncio.shield(connection.close())
            raise
        if self._closed or connection.invalidated or len(self._idle) >= self._limit:
            await connection.close()
        else:
            self._idle.append(connection)

    async def close(self) -> None:
        """Give the kept connections back to the pool; later transactions keep none."""
        self._closed = True
        while self._idle:
            await self._idle.pop().close()
