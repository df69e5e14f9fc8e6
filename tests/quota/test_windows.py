"""Usage resets when the guild's window rolls over; no cron, just the injected clock."""

from __future__ import annotations

from bot.core.quota import Period, QuotaService
from tests.quota.conftest import GUILD, MOD, USER, Clock, ServiceFactory


async def use(quota: QuotaService, job_id: str, images: int) -> None:
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id=job_id, images=images)
    await quota.commit(job_id, images)


async def remaining(quota: QuotaService) -> int | None:
    return (await quota.status(GUILD, USER, [])).remaining


async def test_daily_usage_resets_at_midnight_utc(quota: QuotaService, clock: Clock) -> None:
    clock.set(2025, 1, 15, 9, 0)
    await use(quota, "jobday01", 10)
    clock.set(2025, 1, 15, 23, 59, 59)
    assert await remaining(quota) == 0

    clock.set(2025, 1, 16, 0, 0)
    status = await quota.status(GUILD, USER, [])
    assert (status.used, status.remaining, status.period) == (0, 10, Period.DAILY)
    assert status.window_start == clock.now and status.resets_at.day == 17


async def test_weekly_usage_resets_on_monday_utc(quota: QuotaService, clock: Clock) -> None:
    await quota.set_guild_default(GUILD, 10, Period.WEEKLY, MOD)
    clock.set(2025, 1, 13, 0, 0)  # Monday
    await use(quota, "jobweek1", 6)
    clock.set(2025, 1, 19, 23, 0)  # Sunday of the same ISO week
    await use(quota, "jobweek2", 4)
    assert await remaining(quota) == 0

    clock.set(2025, 1, 20, 0, 0)  # next Monday
    assert await remaining(quota) == 10


async def test_monthly_usage_resets_on_the_first_utc(quota: QuotaService, clock: Clock) -> None:
    await quota.set_guild_default(GUILD, 10, Period.MONTHLY, MOD)
    clock.set(2025, 1, 2, 8, 0)
    await use(quota, "jobmon01", 4)
    clock.set(2025, 1, 31, 23, 0)
    await use(quota, "jobmon02", 6)
    assert await remaining(quota) == 0

    clock.set(2025, 2, 1, 0, 0)
    status = await quota.status(GUILD, USER, [])
    assert (status.remaining, status.period, status.resets_at.month) == (10, Period.MONTHLY, 3)


async def test_switching_the_period_changes_which_usage_counts(quota: QuotaService, clock: Clock) -> None:
    clock.set(2025, 1, 14, 12, 0)
    await use(quota, "jobtues1", 3)
    clock.set(2025, 1, 15, 12, 0)
    await use(quota, "jobwed01", 2)
    assert (await quota.status(GUILD, USER, [])).used == 2  # daily: only today

    await quota.set_guild_default(GUILD, None, Period.WEEKLY, MOD)
    assert (await quota.status(GUILD, USER, [])).used == 5  # this ISO week: both days


async def test_bot_default_period_applies_when_the_guild_chose_none(make_service: ServiceFactory) -> None:
    quota = make_service(default_period=Period.MONTHLY)
    status = await quota.status(GUILD, USER, [])
    assert status.period is Period.MONTHLY
    assert (await quota.guild_settings(GUILD)).effective_period is Period.MONTHLY
