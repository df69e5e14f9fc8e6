"""Effective limit end to end: member > highest role > guild > global; exempt; blocked."""

from __future__ import annotations

import pytest

from bot.core.quota import MemberBlocked, QuotaExceeded, QuotaService
from tests.quota.conftest import GUILD, MOD, USER, ServiceFactory

HELPER, ARTIST, STAFF = 11, 12, 13


async def limit_and_source(quota: QuotaService, roles: list[int]) -> tuple[int | None, str]:
    status = await quota.status(GUILD, USER, roles)
    return status.limit, status.source


async def test_each_level_overrides_the_one_below_it(quota: QuotaService) -> None:
    assert await limit_and_source(quota, [HELPER, ARTIST]) == (10, "global")

    await quota.set_guild_default(GUILD, 4, None, MOD)
    assert await limit_and_source(quota, [HELPER, ARTIST]) == (4, "guild")

    await quota.set_role_limit(GUILD, HELPER, 2, MOD)
    await quota.set_role_limit(GUILD, ARTIST, 25, MOD)
    assert await limit_and_source(quota, [HELPER, ARTIST]) == (25, "role")
    assert await limit_and_source(quota, [HELPER]) == (2, "role")  # a role limit may be below the guild's
    assert await limit_and_source(quota, []) == (4, "guild")

    await quota.set_member_limit(GUILD, USER, 1, MOD)
    assert await limit_and_source(quota, [HELPER, ARTIST]) == (1, "member")

    await quota.set_member_limit(GUILD, USER, None, MOD)
    await quota.set_role_limit(GUILD, ARTIST, None, MOD)
    await quota.set_guild_default(GUILD, None, None, MOD)
    assert await limit_and_source(quota, [ARTIST]) == (10, "global")


async def test_roles_the_member_lacks_do_not_count(quota: QuotaService) -> None:
    await quota.set_role_limit(GUILD, ARTIST, 50, MOD)
    await quota.set_role_exempt(GUILD, STAFF, True, MOD)
    assert await limit_and_source(quota, [HELPER]) == (10, "global")


async def test_the_limit_is_enforced_at_its_effective_level(quota: QuotaService) -> None:
    await quota.set_role_limit(GUILD, ARTIST, 3, MOD)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[ARTIST], job_id="jobrole1", images=3)
    with pytest.raises(QuotaExceeded):
        await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[ARTIST], job_id="jobrole2", images=1)


async def test_an_exempt_role_is_unlimited(quota: QuotaService) -> None:
    await quota.set_member_limit(GUILD, USER, 1, MOD)
    await quota.set_role_exempt(GUILD, STAFF, True, MOD)

    for n in range(3):
        await quota.reserve(
            guild_id=GUILD, user_id=USER, role_ids=[STAFF], job_id=f"jobexm{n:02d}", images=15
        )

    status = await quota.status(GUILD, USER, [STAFF])
    assert (status.limit, status.remaining, status.exempt, status.source) == (None, None, True, "exempt")
    assert status.reserved == 45

    await quota.set_role_exempt(GUILD, STAFF, False, MOD)
    assert await limit_and_source(quota, [STAFF]) == (1, "member")


async def test_an_unlimited_global_default_lets_everything_through(make_service: ServiceFactory) -> None:
    quota = make_service(global_default_limit=None)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobfree1", images=500)
    status = await quota.status(GUILD, USER, [])
    assert (status.limit, status.remaining, status.source) == (None, None, "global")


async def test_a_blocked_member_gets_nothing_even_with_an_exempt_role(quota: QuotaService) -> None:
    await quota.set_role_exempt(GUILD, STAFF, True, MOD)
    await quota.set_blocked(GUILD, USER, True, MOD, reason="spamming")

    with pytest.raises(MemberBlocked) as refused:
        await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[STAFF], job_id="jobblock", images=1)
    assert (refused.value.status.source, refused.value.status.remaining) == ("blocked", 0)

    await quota.set_blocked(GUILD, USER, False, MOD)
    await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobunblk", images=1)


async def test_a_member_limit_of_zero_refuses_as_exhausted_not_blocked(quota: QuotaService) -> None:
    await quota.set_member_limit(GUILD, USER, 0, MOD)
    with pytest.raises(QuotaExceeded):
        await quota.reserve(guild_id=GUILD, user_id=USER, role_ids=[], job_id="jobzero1", images=1)


async def test_negative_limits_are_refused(quota: QuotaService) -> None:
    with pytest.raises(ValueError):
        await quota.set_member_limit(GUILD, USER, -1, MOD)
    with pytest.raises(ValueError):
        await quota.set_role_limit(GUILD, HELPER, -5, MOD)
    with pytest.raises(ValueError):
        await quota.set_server_cap(GUILD, -1, MOD)
    assert await quota.audit_log(GUILD) == []


async def test_settings_are_per_guild(quota: QuotaService) -> None:
    await quota.set_member_limit(GUILD, USER, 1, MOD)
    await quota.set_guild_default(GUILD, 2, None, MOD)
    other = await quota.status(GUILD + 1, USER, [])
    assert (other.limit, other.source) == (10, "global")
