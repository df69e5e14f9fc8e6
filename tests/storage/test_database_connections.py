"""`Database.transaction()` keeps the connection of a transaction that ended well for the next
one (taking it from the pool and giving it back cost half of a small transaction's CPU), and
never hands out again the connection of one that failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from bot.storage.database import Database
from bot.storage.tables import command_sync


def count_checkouts(database: Database) -> dict[str, int]:
    counts = {"checkout": 0, "checkin": 0}

    def checkout(*_: Any) -> None:
        counts["checkout"] += 1

    def checkin(*_: Any) -> None:
        counts["checkin"] += 1

    event.listen(database.engine.sync_engine.pool, "checkout", checkout)
    event.listen(database.engine.sync_engine.pool, "checkin", checkin)
    return counts


def row(key: str) -> sa.Insert:
    return command_sync.insert().values(scope=key, payload_hash="h", synced_at=datetime.now(UTC))


async def write(database: Database, key: str) -> None:
    async with database.transaction() as conn:
        await conn.execute(row(key))


async def keys(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set((await conn.execute(sa.select(command_sync.c.scope))).scalars())


async def test_transactions_one_after_another_take_one_connection_from_the_pool(database: Database) -> None:
    counts = count_checkouts(database)

    for index in range(5):
        await write(database, f"k{index}")

    assert counts == {"checkout": 1, "checkin": 0}
    assert await keys(database) == {f"k{index}" for index in range(5)}


async def test_a_failed_transaction_rolls_back_and_gives_up_its_connection(database: Database) -> None:
    await write(database, "kept")
    counts = count_checkouts(database)

    with pytest.raises(RuntimeError):
        async with database.transaction() as conn:
            await conn.execute(row("undone"))
            raise RuntimeError("boom")
    assert counts == {"checkout": 0, "checkin": 1}  # the connection went back, not to the next writer

    await write(database, "after")  # a new one, which works
    assert counts == {"checkout": 1, "checkin": 1}
    assert await keys(database) == {"kept", "after"}


async def test_a_transaction_cancelled_midway_leaves_nothing_behind(database: Database) -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        async with database.transaction() as conn:
            await conn.execute(row("cancelled"))
            started.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(stuck())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await write(database, "next")
    assert await keys(database) == {"next"}


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_concurrent_transactions_each_keep_their_own_connection(database: Database) -> None:
    counts = count_checkouts(database)
    together = asyncio.Barrier(3)

    async def write_together(key: str) -> None:
        async with database.transaction() as conn:
            await conn.execute(row(key))
            await together.wait()  # all three open at once: three connections

    await asyncio.gather(*(write_together(f"t{index}") for index in range(3)))
    assert counts["checkout"] == 3
    await asyncio.gather(*(write_together(f"u{index}") for index in range(3)))
    assert counts == {"checkout": 3, "checkin": 0}  # the same three, kept
    assert await keys(database) == {f"{prefix}{index}" for prefix in "tu" for index in range(3)}


async def test_close_gives_the_kept_connections_back(database: Database) -> None:
    await write(database, "k")
    counts = count_checkouts(database)

    await database.close()

    assert counts["checkin"] == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_single_statement_on_postgresql_runs_in_its_own_implicit_transaction(database: Database) -> None:
    """No BEGIN, no COMMIT: each statement is a transaction of its own (autocommit)."""
    transaction_id = sa.select(sa.func.txid_current())
    async with database.single_statement() as conn:
        first = (await conn.execute(transaction_id)).scalar()
        second = (await conn.execute(transaction_id)).scalar()
    assert first != second
    async with database.transaction() as conn:  # while a transaction is one
        first = (await conn.execute(transaction_id)).scalar()
        second = (await conn.execute(transaction_id)).scalar()
    assert first == second

    counts = count_checkouts(database)
    for key in ("a", "b"):
        async with database.single_statement() as conn:
            await conn.execute(row(key))
    assert counts["checkout"] == 0  # kept, like a transaction's
    assert await keys(database) == {"a", "b"}


async def test_a_failed_single_statement_changes_nothing_and_the_next_one_works(database: Database) -> None:
    await write(database, "taken")

    with pytest.raises(sa.exc.IntegrityError):
        async with database.single_statement() as conn:
            await conn.execute(row("taken"))

    async with database.single_statement() as conn:
        await conn.execute(row("free"))
    assert await keys(database) == {"taken", "free"}
