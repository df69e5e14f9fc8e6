"""`prepared.run` gives what `conn.execute` gives for the statements every job runs, on both
backends: the same rows through the same types, the same errors, the same statement events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from bot.core.jobs.spec import StoredRequest
from bot.storage import prepared
from bot.storage.database import Database, upsert
from bot.storage.jobs import JobStore, _start
from bot.storage.quota_snapshot import _SNAPSHOT
from bot.storage.tables import command_sync, jobs

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SYNCED = command_sync.insert()


async def stored_job(database: Database) -> str:
    store = JobStore(database, clock=lambda: NOW)
    job = await store.create(kind="imagine", requester_id=7, guild_id=1, channel_id=2,
                             request=_request(), delivery={"token": "t"})
    return job.id


def _request() -> StoredRequest:
    return StoredRequest(prompt="a cat", size="2K", count=1, watermark=False)


async def test_returned_rows_match_execute_through_their_types(database: Database) -> None:
    job_id = await stored_job(database)
    values = {"id0": job_id, "owner": "me", "now": NOW, "b_lease_expires_at": NOW + timedelta(seconds=30)}

    async with database.engine.connect() as conn:
        async with conn.begin() as transaction:
            expected = [dict(row) for row in (await conn.execute(_start(1), values)).mappings()]
            await transaction.rollback()
        async with conn.begin():
            got = (await prepared.run(conn, _start(1), values)).mappings()

    assert got == expected
    [row] = got
    assert row["started_at"] == NOW and row["started_at"].tzinfo is UTC  # UTCDateTime's result processor
    assert row["request"]["prompt"] == "a cat" and row["delivery"] == {"token": "t"}  # JSON
    assert row["announced"] is False and row["state"] == "running"


async def test_a_read_of_labelled_subqueries_matches_execute(database: Database) -> None:
    values = {"guild_id": 1, "user_id": 7, "start": NOW - timedelta(days=1), "end": NOW, "now": NOW}
    async with database.engine.connect() as conn:
        expected = dict((await conn.execute(_SNAPSHOT, values)).mappings().one())
        got = (await prepared.run(conn, _SNAPSHOT, values)).one_mapping()
    assert got == expected
    assert got["used"] == 0 and got["member_image_limit"] is None


async def test_an_error_comes_out_as_sqlalchemys_and_the_transaction_goes_on_as_after_execute(
    database: Database,
) -> None:
    row = {"scope": "s", "payload_hash": "h", "synced_at": NOW}
    await _insert(database, row)

    with pytest.raises(sa.exc.IntegrityError):
        async with database.transaction() as conn:
            await prepared.run(conn, SYNCED, row)

    async with database.transaction() as conn:  # the connection is usable again
        touched = await prepared.run(conn, upsert(database.dialect, command_sync, key=("scope",),
                                                  update=("payload_hash",)), {**row, "payload_hash": "h2"})
    assert touched.rowcount == 1
    async with database.engine.connect() as conn:
        assert (await conn.execute(sa.select(command_sync.c.payload_hash))).scalar_one() == "h2"


async def test_the_statement_events_see_it(database: Database) -> None:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(database.engine.sync_engine, "before_cursor_execute", before)
    async with database.transaction() as conn:
        await prepared.run(conn, SYNCED, {"scope": "s", "payload_hash": "h", "synced_at": NOW})
    assert seen == ["INSERT"]


async def test_outside_a_transaction_it_begins_one_that_the_connection_ends(database: Database) -> None:
    async with database.engine.connect() as conn:
        await prepared.run(conn, SYNCED, {"scope": "s", "payload_hash": "h", "synced_at": NOW})
        assert conn.in_transaction()
    # never committed: rolled back when the connection went back to the pool
    async with database.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(command_sync))).scalar_one() == 0
    await _insert(database, {"scope": "t", "payload_hash": "h", "synced_at": NOW})  # no lock was left held


async def test_an_insert_compiles_for_the_columns_it_is_given(database: Database) -> None:
    job_id = await stored_job(database)
    async with database.transaction() as conn:
        await prepared.run(conn, SYNCED, {"scope": "a", "payload_hash": "h", "synced_at": NOW})
        await prepared.run(conn, SYNCED, {"scope": "b", "payload_hash": "h", "synced_at": NOW})
    async with database.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(command_sync))).scalar_one() == 2
        assert (await conn.execute(sa.select(jobs.c.id))).scalar_one() == job_id


async def _insert(database: Database, row: dict[str, Any]) -> None:
    async with database.transaction() as conn:
        await conn.execute(SYNCED, row)


async def test_json_columns_read_back_what_was_stored_including_keys_that_are_not_strings(database: Database) -> None:
    """JSON goes through orjson (`json_text`), as lenient as `json.dumps` was about keys."""
    job_id = await stored_job(database)
    images = [{"index": 0, "filename": "a.png", "sizes": {1: "1K"}}, {"index": 1, "note": "é ✓"}]
    async with database.transaction() as conn:
        await conn.execute(jobs.update().where(jobs.c.id == job_id).values(images=images))
    async with database.engine.connect() as conn:
        stored = (await conn.execute(sa.select(jobs.c.images))).scalar_one()
    assert stored == [{"index": 0, "filename": "a.png", "sizes": {"1": "1K"}}, {"index": 1, "note": "é ✓"}]


async def test_a_missing_value_and_a_statement_it_cannot_prepare_are_refused(database: Database) -> None:
    async with database.engine.connect() as conn:
        with pytest.raises(KeyError, match="guild_id"):
            await prepared.run(conn, _SNAPSHOT, {"user_id": 7, "start": NOW, "end": NOW, "now": NOW})
        expanding = sa.select(jobs.c.id).where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
        with pytest.raises(ValueError, match="expanding"):
            await prepared.run(conn, expanding, {"ids": ["a"]})


async def test_inside_a_transaction_it_makes_no_greenlet_switch(database: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's own coroutine is awaited (SQLite driver, SQLAlchemy's asyncpg adapter): if an
    upgrade renames it, this fails instead of the bot silently paying `run_sync` again."""
    from sqlalchemy.ext.asyncio import AsyncConnection

    switches: list[object] = []
    original = AsyncConnection.run_sync

    async def counted(self: AsyncConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        switches.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(AsyncConnection, "run_sync", counted)
    async with database.transaction() as conn:
        await prepared.run(conn, SYNCED, {"scope": "s", "payload_hash": "h", "synced_at": NOW})
        snapshot = await prepared.run(conn, _SNAPSHOT, {"guild_id": 1, "user_id": 7, "start": NOW, "end": NOW,
                                                        "now": NOW})
    assert switches == []
    assert snapshot.one_mapping()["used"] == 0
