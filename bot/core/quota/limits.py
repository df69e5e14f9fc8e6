"""Which limit applies to a member, and why (the `source` explains the number to the member).

Precedence: blocked (nothing) > an exempt role (unlimited) > the member's own override >
the highest limit among the member's roles > the guild default > the global default from
configuration. `None` as a limit means unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

LimitSource = Literal["member", "role", "guild", "global", "exempt", "blocked"]


@dataclass(frozen=True)
class EffectiveLimit:
    limit: int | None  # None: unlimited
    source: LimitSource


def resolve_limit(
    *,
    blocked: bool,
    exempt: bool,
    member_limit: int | None,
    role_limits: Iterable[int],
    guild_default: int | None,
    global_default: int | None,
) -> EffectiveLimit:
    if blocked:
        return EffectiveLimit(0, "blocked")
    if exempt:
        return EffectiveLimit(None, "exempt")
    if member_limit is not None:
        return EffectiveLimit(member_limit, "member")
    best_role = max(role_limits, default=None)
    if best_role is not None:
        return EffectiveLimit(best_role, "role")
    if guild_default is not None:
        return EffectiveLimit(guild_default, "guild")
    return EffectiveLimit(global_default, "global")


def check_limit(value: int | None, what: str) -> None:
    """Limits are whole numbers of images, zero or more (`None` clears the setting)."""
    if value is not None and value < 0:
        raise ValueError(f"{what} must be zero or more, not {value}")
