"""Which limit applies, as a pure function (the database tests cover the same rules end to end)."""

from __future__ import annotations

from bot.core.quota.limits import EffectiveLimit, resolve_limit


def resolve(**overrides: object) -> EffectiveLimit:
    values: dict = {
        "blocked": False,
        "exempt": False,
        "member_limit": None,
        "role_limits": [],
        "guild_default": None,
        "global_default": 5,
    }
    values.update(overrides)
    return resolve_limit(**values)


def test_global_default_applies_when_nothing_else_is_set() -> None:
    assert resolve() == EffectiveLimit(5, "global")
    assert resolve(global_default=None) == EffectiveLimit(None, "global")


def test_guild_default_beats_global() -> None:
    assert resolve(guild_default=2) == EffectiveLimit(2, "guild")


def test_highest_role_limit_beats_guild_default_even_when_lower() -> None:
    assert resolve(role_limits=[3, 40, 7], guild_default=100) == EffectiveLimit(40, "role")
    assert resolve(role_limits=[1], guild_default=100) == EffectiveLimit(1, "role")


def test_member_override_beats_roles_even_when_lower() -> None:
    assert resolve(member_limit=0, role_limits=[40], guild_default=9) == EffectiveLimit(0, "member")


def test_exempt_role_is_unlimited_over_any_limit() -> None:
    assert resolve(exempt=True, member_limit=3, role_limits=[4]) == EffectiveLimit(None, "exempt")


def test_blocked_beats_everything() -> None:
    assert resolve(blocked=True, exempt=True, member_limit=50) == EffectiveLimit(0, "blocked")
