"""The SQLite driver (bot/storage/sqlite_driver.py): SQLAlchemy's results and errors unchanged,
one trip to the SQLite thread per statement, and no rollback trip for a connection that is idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.storage.database import Database
from bot.storage.sqlite_driver import INLINE_PARAMETER_BYTES

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String, nullable=False, unique=True),
)


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


async def test_each_statement_is_one_trip_and_an_idle_connection_is_not_rolled_back(
    database: Database, trips: list[str]
) -> None:
    async with database.engine.connect() as warm:  # the pool's connection exists before counting
        await warm.execute(sa.select(1))
    trips.clear()
    async with database.transaction() as conn:
        await conn.execute(notes.insert(), {"text": "a"})
        await conn.execute(sa.select(notes))
    # The insert (its BEGIN IMMEDIATE in the same trip), then the commit: the select ran on the
    # loop's thread (the transaction holds the write lock); the pool's rollback of the returned
    # connection finds no transaction open and makes no trip.
    assert trips == ["_run", "commit"]
    trips.clear()
    async with database.engine.connect() as conn:  # a read: no write lock held, every statement trips
        await conn.execute(sa.select(notes))
        await conn.execute(sa.select(notes))
    assert trips == ["_run", "_run", "rollback"]
    trips.clear()
    async with database.transaction() as conn:
        await conn.execute(sa.select(notes))
        await conn.execute(notes.insert(), {"text": "x" * (INLINE_PARAMETER_BYTES + 1)})  # too big to copy here
        await conn.execute(notes.insert(), {"text": "small"})
        await conn.execute(notes.delete().where(notes.c.text == "small"))  # may free many pages
    assert trips == ["_run", "_run", "_run", "commit"]
    trips.clear()
    async with database.transaction():
        pass
    assert trips == []  # a transaction that runs nothing costs nothing


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
    assert "rollback" in trips
    with pytest.raises(OperationalError):
        async with database.engine.connect() as conn:
            await conn.execute(sa.text("SELECT no_such_column FROM notes"))
    async with database.engine.connect() as conn:
        texts = (await conn.execute(sa.select(notes.c.text))).scalars().all()
    assert texts == ["kept"]  # "lost" went with its transaction; the connection still works
