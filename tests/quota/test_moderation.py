"""Grants, resets, the server cap, and the ledger that explains every number."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.quota import LedgerKind, Period, QuotaExceeded, QuotaService, QuotaStatus, ServerCapReached
from bot.storage.database import Database
from tests.quota.conftest import GUILD, MOD, USER, Clock, gauge_connections

OTHER = USER + 1


async def use(
    quota: QuotaService, job_id: str, images: int, user: int = USER, roles: list[int] | None = None
) -> None:
    await quota.reserve(guild_id=GUILD, user_id=user, role_ids=roles or [], job_id=job_id, images=images)
    await quota.commit(job_id, images)


async def test_a_grant_adds_to_the_current_window_only(quota: QuotaService, clock: Clock) -> None:
    await use(quota, "jobgrnt1", 10)
    await quota.grant(GUILD, USER, 5, MOD, reason="contest winner")

    status = await quota.status(GUILD, USER, [])
    assert (status.limit, status.granted, status.used, status.remaining) == (10, 5, 10, 5)
    await use(quota, "jobgrnt2", 5)
    with pytest.raises(QuotaExceeded):
        await use(quota, "jobgrnt3", 1)

    clock.advance(days=1)
    status = await quota.status(GUILD, USER, [])
    assert (status.granted, status.remaining) == (0, 10)


async def test_a_grant_must_be_positive(quota: QuotaService) -> None:
    with pytest.raises(ValueError):
        await quota.grant(GUILD, USER, 0, MOD)


async def test_reset_zeroes_the_window_usage_with_a_negative_adjustment(quota: QuotaService) -> None:
    await use(quota, "jobrst01", 7)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobrst02", images=2)

    await quota.reset_member(GUILD, USER, MOD, reason="bug ate their images")

    status = await quota.status(GUILD, USER, [])
    assert (status.used, status.reserved, status.remaining) == (0, 2, 8)  # the running job still holds 2
    reset = (await quota.history(GUILD, USER))[0]
    assert (reset.kind, reset.amount, reset.moderator_id) == (LedgerKind.RESET, -7, MOD)
    assert reset.reason == "bug ate their images"

    await quota.commit("jobrst02", 2)
    await quota.reset_member(GUILD, USER, MOD)
    assert (await quota.status(GUILD, USER, [])).used == 0


async def test_server_cap_pauses_generation_until_next_month(quota: QuotaService, clock: Clock) -> None:
    await quota.set_server_cap(GUILD, 12, MOD)
    await use(quota, "jobcap01", 8, user=USER)
    await use(quota, "jobcap02", 3, user=OTHER)

    with pytest.raises(ServerCapReached) as refused:
        await use(quota, "jobcap03", 2, user=OTHER)
    assert refused.value.resets_at == clock.now.replace(month=2, day=1, hour=0)
    assert "1 image left" in refused.value.user_message
    await use(quota, "jobcap04", 1, user=OTHER)
    with pytest.raises(ServerCapReached):
        await use(quota, "jobcap05", 1, user=OTHER)

    clock.set(2025, 2, 1, 0, 0)
    status = await quota.status(GUILD, OTHER, [])
    assert (status.server_cap, status.server_used, status.server_remaining) == (12, 0, 12)
    await use(quota, "jobcap06", 1, user=OTHER)


async def test_raising_the_server_cap_resumes_generation_at_once(quota: QuotaService) -> None:
    await quota.set_server_cap(GUILD, 5, MOD)
    await use(quota, "jobrais1", 5)
    with pytest.raises(ServerCapReached):
        await use(quota, "jobrais2", 1, user=OTHER)

    await quota.set_server_cap(GUILD, 10, MOD, reason="budget approved")
    await use(quota, "jobrais3", 1, user=OTHER)
    await quota.set_server_cap(GUILD, None, MOD)
    await use(quota, "jobrais4", 4, user=OTHER)


async def test_the_server_cap_binds_exempt_members_and_ignores_member_resets(quota: QuotaService) -> None:
    staff = 99
    await quota.set_role_exempt(GUILD, staff, True, MOD)
    await quota.set_server_cap(GUILD, 6, MOD)
    await use(quota, "jobexmp1", 6, roles=[staff])
    await quota.reset_member(GUILD, USER, MOD)

    with pytest.raises(ServerCapReached):
        await use(quota, "jobexmp2", 1, roles=[staff])


async def test_concurrent_members_cannot_overshoot_the_server_cap(
    database: Database, quota: QuotaService
) -> None:
    await quota.set_server_cap(GUILD, 7, MOD)

    with gauge_connections(database) as gauge:
        outcomes = await asyncio.gather(
            *(
                quota.reserve(
                    guild_id=GUILD, user_id=5000 + n, role_ids=[], job_id=f"jobsrv{n:02d}", images=1
                )
                for n in range(25)
            ),
            return_exceptions=True,
        )

    assert sum(isinstance(outcome, QuotaStatus) for outcome in outcomes) == 7
    assert sum(isinstance(outcome, ServerCapReached) for outcome in outcomes) == 18
    if database.dialect == "postgresql":  # SQLite writers queue on the in-process write lock by design
        assert gauge.most >= 5
    assert (await quota.status(GUILD, USER, [])).server_reserved == 7


async def test_every_change_leaves_a_ledger_row_naming_who_and_why(quota: QuotaService) -> None:
    await quota.set_guild_default(GUILD, 5, Period.WEEKLY, MOD, reason="launch week")
    await quota.set_role_limit(GUILD, 11, 8, MOD)
    await quota.set_role_exempt(GUILD, 12, True, MOD)
    await quota.set_member_limit(GUILD, USER, 9, MOD)
    await quota.set_blocked(GUILD, OTHER, True, MOD)
    await quota.set_blocked(GUILD, OTHER, False, MOD)
    await quota.set_server_cap(GUILD, 1000, MOD)
    await quota.set_audit_channel(GUILD, 777, MOD)
    await quota.set_moderator_role(GUILD, 888, MOD)
    await quota.grant(GUILD, USER, 2, MOD)
    await use(quota, "jobledg1", 3)
    await quota.reset_member(GUILD, USER, MOD)

    audit = list(reversed(await quota.audit_log(GUILD)))
    assert [entry.kind for entry in audit] == [
        LedgerKind.GUILD_DEFAULT,
        LedgerKind.ROLE_LIMIT,
        LedgerKind.ROLE_EXEMPT,
        LedgerKind.MEMBER_LIMIT,
        LedgerKind.BLOCK,
        LedgerKind.UNBLOCK,
        LedgerKind.SERVER_CAP,
        LedgerKind.AUDIT_CHANNEL,
        LedgerKind.MODERATOR_ROLE,
        LedgerKind.GRANT,
        LedgerKind.RESERVE,
        LedgerKind.CHARGE,
        LedgerKind.RESET,
    ]
    moderated = [entry for entry in audit if entry.kind not in (LedgerKind.RESERVE, LedgerKind.CHARGE)]
    assert all(entry.moderator_id == MOD for entry in moderated)
    assert audit[0].reason == "launch week"
    assert audit[0].describe() == "server default limit set to 5, period weekly: launch week"
    assert audit[0].detail["previous"] == {"default_limit": None, "period": None}
    assert audit[1].detail == {"role_id": 11, "previous": None}
    assert all(entry.describe() for entry in audit)


async def test_the_history_explains_the_numbers_shown(quota: QuotaService) -> None:
    await use(quota, "jobexpl1", 4)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobexpl2", images=3)
    await quota.commit("jobexpl2", 1)
    await quota.reset_member(GUILD, USER, MOD)
    await use(quota, "jobexpl3", 2)
    await quota.grant(GUILD, USER, 3, MOD)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobexpl4", images=2)

    status = await quota.status(GUILD, USER, [])
    history = await quota.history(GUILD, USER, limit=100)

    def total(kind: LedgerKind) -> int:
        return sum(entry.amount or 0 for entry in history if entry.kind is kind)

    assert status.used == total(LedgerKind.CHARGE) + total(LedgerKind.RESET) == 2
    assert status.granted == total(LedgerKind.GRANT) == 3
    assert (
        status.reserved
        == (
            total(LedgerKind.RESERVE)
            - total(LedgerKind.CHARGE)
            - total(LedgerKind.RELEASE)
            - total(LedgerKind.EXPIRE)
        )
        == 2
    )
    assert status.remaining == 10 + 3 - 2 - 2


async def test_history_is_newest_first_and_limited(quota: QuotaService) -> None:
    for n in range(5):
        await quota.grant(GUILD, USER, n + 1, MOD)
    await quota.grant(GUILD, OTHER, 9, MOD)

    history = await quota.history(GUILD, USER, limit=3)
    assert [entry.amount for entry in history] == [5, 4, 3]


async def test_guild_settings_report_what_was_configured(quota: QuotaService) -> None:
    await quota.set_guild_default(GUILD, 6, Period.MONTHLY, MOD)
    await quota.set_role_limit(GUILD, 11, 20, MOD)
    await quota.set_role_exempt(GUILD, 12, True, MOD)
    await quota.set_role_limit(GUILD, 13, 4, MOD)
    await quota.set_role_limit(GUILD, 13, None, MOD)
    await quota.set_server_cap(GUILD, 900, MOD)
    await quota.set_audit_channel(GUILD, 777, MOD)
    await quota.set_moderator_role(GUILD, 888, MOD)

    settings = await quota.guild_settings(GUILD)
    assert (settings.default_limit, settings.period, settings.effective_period) == (
        6,
        Period.MONTHLY,
        Period.MONTHLY,
    )
    assert settings.role_limits == {11: 20}
    assert settings.exempt_roles == frozenset({12})
    assert (settings.server_cap, settings.audit_channel_id, settings.moderator_role_id) == (900, 777, 888)
    assert settings.global_default_limit == 10

    await quota.set_audit_channel(GUILD, None, MOD)
    assert (await quota.guild_settings(GUILD)).audit_channel_id is None


async def test_an_unconfigured_guild_has_empty_settings(quota: QuotaService) -> None:
    settings = await quota.guild_settings(GUILD)
    assert (settings.default_limit, settings.period, settings.server_cap) == (None, None, None)
    assert settings.effective_period is Period.DAILY and settings.role_limits == {}
