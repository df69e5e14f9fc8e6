"""The SQLite driver (bot/storage/sqlite_driver.py): SQLAlchemy's results and errors unchanged,
no trip to the SQLite thread for a small write transaction, one per statement for a read, the
WAL checkpointed by the driver, and every call on the SQLite thread where there is no WAL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.util.concurrency import greenlet_spawn

from bot.storage.database import Database
from bot.storage.sqlite_driver import CHECKPOINT_COMMITS, CHECKPOINT_PAGES, INLINE_PARAMETER_BYTES, one_trip_dbapi

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String, nullable=False, unique=True),
)
blobs = sa.Table("blobs", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("content", sa.LargeBinary, nullable=False))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.close()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite connection's thread."""
    sent: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def test_rows_counts_and_new_ids_come_back_as_sqlalchemy_gives_them(database: Database) -> None:
    async with database.transaction() as conn:
        first = await conn.execute(notes.insert(), {"text": "a"})
        await conn.execute(notes.insert(), [{"text": "b"}, {"text": "c"}])  # executemany
        updated = await conn.execute(notes.update().where(notes.c.text != "a").values(text=notes.c.text + "!"))
    assert first.inserted_primary_key == (1,)
    assert updated.rowcount == 2
    async with database.engine.connect() as conn:
        rows = (await conn.execute(sa.select(notes).order_by(notes.c.id))).mappings().all()
        nothing = (await conn.execute(sa.select(notes).where(notes.c.id == 99))).first()
    assert [dict(row) for row in rows] == [{"id": 1, "text": "a"}, {"id": 2, "text": "b!"}, {"id": 3, "text": "c!"}]
    assert nothing is None


async def test_a_small_write_transaction_makes_no_trip_and_a_read_makes_one_per_statement(
    database: Database, trips: list[str]
) -> None:
    async with database.transaction() as warm:  # the writer's connection, kept between transactions,
        await warm.execute(sa.select(1))
    async with database.engine.connect() as warm:  # and a reader's exist before counting
        await warm.execute(sa.select(1))
    trips.clear()
    async with database.transaction() as conn:
        await conn.execute(notes.insert(), {"text": "a"})
        await conn.execute(sa.select(notes))
    # BEGIN IMMEDIATE found the write lock free and took it on the loop's thread; the statements
    # and the COMMIT ran there too.
    assert trips == []
    async with database.engine.connect() as conn:  # a read: no write lock held, every statement trips
        await conn.execute(sa.select(notes))
        await conn.execute(sa.select(notes))
    assert trips == ["_run", "_run"]  # its ROLLBACK ran on the loop's thread
    trips.clear()
    async with database.transaction() as conn:
        await conn.execute(sa.select(notes))
        await conn.execute(notes.insert(), {"text": "x" * (INLINE_PARAMETER_BYTES + 1)})  # too big to copy here
        await conn.execute(notes.insert(), {"text": "small"})
        await conn.execute(notes.delete().where(notes.c.text == "small"))  # may free many pages
    assert trips == ["_run", "_run", "commit"]  # and its COMMIT appends those pages to the WAL
    trips.clear()
    async with database.transaction():
        pass
    assert trips == []  # a transaction that runs nothing costs nothing
    async with database.engine.connect() as conn:
        texts = (await conn.execute(sa.select(notes.c.text).order_by(notes.c.id))).scalars().all()
    assert texts == ["a", "x" * (INLINE_PARAMETER_BYTES + 1)]


async def test_the_wal_is_checkpointed_on_the_sqlite_thread_every_so_many_pages_or_commits(
    database: Database, trips: list[str]
) -> None:
    for number in range(CHECKPOINT_COMMITS):
        async with database.transaction() as conn:
            await conn.execute(notes.insert(), {"text": f"note {number}"})
    assert trips.count("_checkpoint") == 1
    trips.clear()
    big = "y" * (INLINE_PARAMETER_BYTES // 2)  # small enough to write on the loop's thread
    for number in range(CHECKPOINT_PAGES * 4096 // len(big) + 1):
        async with database.transaction() as conn:
            await conn.execute(notes.insert(), {"text": f"{number} {big}"})
    assert trips.count("_checkpoint") >= 1  # long before CHECKPOINT_COMMITS
    async with database.engine.connect() as conn:  # SQLite's own would checkpoint inside a COMMIT
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0


async def test_without_wal_every_statement_commit_and_rollback_makes_the_trip(
    tmp_path: Path, trips: list[str]
) -> None:
    database = Database("sqlite:///:memory:")  # an in-memory database has no WAL
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        trips.clear()
        async with database.transaction() as conn:
            await conn.execute(notes.insert(), {"text": "a"})
            await conn.execute(sa.select(notes))
        assert trips == ["_run", "_run", "commit"]
        trips.clear()
        async with database.engine.connect() as conn:
            await conn.execute(sa.select(notes))
        assert trips == ["_run", "rollback"]
    finally:
        await database.close()


async def test_a_write_transaction_holds_the_write_lock_from_its_first_statement(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE travels with the first statement: from then on, another process's writer
    waits for the commit (two handles on one file stand for two processes)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    try:
        async with first.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with first.transaction() as conn:
            # A read first: a read-then-write (a quota reservation) must not interleave.
            assert (await conn.execute(sa.select(sa.func.count()).select_from(notes))).scalar_one() == 0

            async def write_from_the_second() -> None:
                async with second.transaction() as other:
                    await other.execute(notes.insert(), {"text": "second"})

            waiting = asyncio.create_task(write_from_the_second())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # SQLite's busy handler holds it until the first commits
            async with second.engine.connect() as reader:  # WAL: reading is not blocked
                assert (await reader.execute(sa.select(sa.func.count()).select_from(notes))).scalar_one() == 0
            await conn.execute(notes.insert(), {"text": "first"})
        await asyncio.wait_for(waiting, 10)
        async with second.engine.connect() as reader:
            texts = (await reader.execute(sa.select(notes.c.text).order_by(notes.c.id))).scalars().all()
        assert texts == ["first", "second"]
    finally:
        await first.close()
        await second.close()


async def test_a_failed_statement_raises_sqlalchemys_error_and_its_transaction_rolls_back(
    database: Database, trips: list[str]
) -> None:
    async with database.transaction() as conn:
        await conn.execute(notes.insert(), {"text": "kept"})
    trips.clear()
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await conn.execute(notes.insert(), {"text": "lost"})
            await conn.execute(notes.insert(), {"text": "kept"})  # UNIQUE fails
    assert trips == []  # it ran, failed and rolled back on the loop's thread
    with pytest.raises(OperationalError):
        async with database.engine.connect() as conn:
            await conn.execute(sa.text("SELECT no_such_column FROM notes"))
    async with database.engine.connect() as conn:
        texts = (await conn.execute(sa.select(notes.c.text))).scalars().all()
    assert texts == ["kept"]  # "lost" went with its transaction; the connection still works


@pytest.mark.parametrize("forced_first", [True, False], ids=["forced first", "graceful first"])
async def test_a_connection_terminated_both_ways_ends_its_thread_and_returns(
    tmp_path: Path, forced_first: bool
) -> None:
    """SQLAlchemy terminates a cancelled task's connection gracefully and, when that wait is
    cancelled, by force: in either order the close returns (it once waited for ever at exit)."""
    connection = await greenlet_spawn(one_trip_dbapi().connect, str(tmp_path / "terminated.db"))
    thread = connection._connection._thread
    if forced_first:
        connection._terminate_force_close()
        await asyncio.wait_for(connection._terminate_graceful_close(), 5)
    else:
        graceful = asyncio.ensure_future(connection._terminate_graceful_close())
        await asyncio.sleep(0)
        connection._terminate_force_close()
        await asyncio.wait_for(graceful, 5)
    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive()


async def test_an_image_is_written_on_the_sqlite_thread_and_its_pages_counted(database: Database,
                                                                              trips: list[str]) -> None:
    """SQLAlchemy binds a LargeBinary value as a memoryview: its size counts like a text's."""
    image = bytes(range(256)) * (INLINE_PARAMETER_BYTES // 256 + 1)
    async with database.transaction() as warm:  # the writer's connection exists before counting
        await warm.execute(sa.select(1))
    trips.clear()
    dbapi = database.engine.sync_engine.dialect.loaded_dbapi
    before = dbapi._pages_written
    async with database.transaction() as conn:
        await conn.execute(blobs.insert(), {"content": image})
    assert trips == ["_run", "commit"]  # too big to write on the loop's thread, and so its COMMIT
    assert dbapi._pages_written - before >= len(image) // 4096
    async with database.engine.connect() as conn:
        assert (await conn.execute(sa.select(blobs.c.content))).scalar_one() == image
