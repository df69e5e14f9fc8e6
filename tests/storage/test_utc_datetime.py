"""`UTCDateTime` on both backends: aware UTC in and out; on SQLite the stored text is exactly
what SQLAlchemy's DATETIME writes, so rows written before and after compare as they always did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from bot.storage.database import Database
from bot.storage.tables import command_sync

PARIS = timezone(timedelta(hours=1))


async def stored(database: Database, when: datetime) -> datetime:
    async with database.transaction() as conn:
        await conn.execute(sa.delete(command_sync))
        await conn.execute(command_sync.insert().values(scope="s", payload_hash="h", synced_at=when))
    async with database.engine.connect() as conn:
        return (await conn.execute(sa.select(command_sync.c.synced_at))).scalar_one()


@pytest.mark.parametrize("when", [datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
                                  datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC),
                                  datetime(2026, 12, 3, 13, 0, 5, 7, tzinfo=PARIS)],
                         ids=["whole seconds", "microseconds", "another zone"])
async def test_a_time_comes_back_the_same_and_in_utc(database: Database, when: datetime) -> None:
    back = await stored(database, when)
    assert back == when and back.tzinfo is UTC


async def test_on_sqlite_the_text_is_sqlalchemys_datetime_text(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/t.db")
    await database.migrate()
    try:
        expected = sa.DateTime().dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
        for when in (datetime(2026, 12, 3, 12, 0, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC)):
            await stored(database, when)
            async with database.engine.connect() as conn:
                text = (await conn.exec_driver_sql("SELECT synced_at FROM command_sync")).scalar_one()
            assert expected is not None
            assert text == expected(when.replace(tzinfo=None))
        async with database.transaction() as conn:  # SQLite's own CURRENT_TIMESTAMP form reads too
            await conn.exec_driver_sql("UPDATE command_sync SET synced_at = '2026-12-03 12:00:00'")
        async with database.engine.connect() as conn:
            back = (await conn.execute(sa.select(command_sync.c.synced_at))).scalar_one()
        assert back == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    finally:
        await database.close()


async def test_a_naive_time_is_refused(database: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await stored(database, datetime(2026, 12, 3, 12, 0))
