"""A reservation reads the member, the guild and the member's totals in one statement (on
PostgreSQL after one more that locks the member's row), and still counts the guild's own period
when it differs from the bot's default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from bot.core.quota import Period, QuotaExceeded, QuotaService
from bot.storage.database import Database
from tests.quota.conftest import GUILD, MOD, USER, Clock


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_a_reservation_reads_once_in_the_default_period(database: Database, quota: QuotaService) -> None:
    await quota.set_member_limit(GUILD, USER, 4, MOD)
    with statements(database) as seen:
        status = await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobread1", images=3,
                                     new_job=True)  # as a submit does: no earlier reservation to look for
    assert (status.limit, status.reserved, status.remaining) == (4, 3, 1)
    # One read, then the reservation and its ledger row. PostgreSQL first takes the member's row
    # (INSERT … ON CONFLICT DO UPDATE … RETURNING: it stays locked until the commit).
    held = ["SELECT", "INSERT", "INSERT"]
    assert seen == (held if database.engine.dialect.name == "sqlite" else ["INSERT", *held])


async def test_a_guild_with_its_own_period_is_counted_in_that_period(
    database: Database, quota: QuotaService, clock: Clock
) -> None:
    await quota.set_guild_default(GUILD, 10, Period.WEEKLY, MOD)  # the bot's default is daily
    clock.set(2025, 1, 13, 9, 0)  # Monday
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobmon01", images=8)
    await quota.commit("jobmon01", 8)

    clock.set(2025, 1, 15, 9, 0)  # Wednesday: a new day, the same week
    with pytest.raises(QuotaExceeded):
        await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobwed01", images=3)
    status = await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobwed02", images=2)
    assert (status.period, status.used, status.remaining) == (Period.WEEKLY, 8, 0)


@pytest.mark.parametrize(("produced", "charged", "ledger_rows"), [(3, 3, 1), (5, 3, 1), (1, 1, 2), (0, 0, 1)])
async def test_a_job_that_ends_settles_its_reservation_without_reading_it_first(
    database: Database, quota: QuotaService, produced: int, charged: int, ledger_rows: int
) -> None:
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobends1", images=3, new_job=True)
    with statements(database) as seen:
        await quota.commit("jobends1", produced)
    assert seen == ["UPDATE", *["INSERT"] * ledger_rows]  # the charge and/or the release
    status = await quota.status(GUILD, USER, [])
    assert (status.used, status.reserved) == (charged, 0)
    with statements(database) as seen:
        await quota.commit("jobends1", produced)  # settled already: nothing changes
    assert "INSERT" not in seen
    assert (await quota.status(GUILD, USER, [])).used == charged
