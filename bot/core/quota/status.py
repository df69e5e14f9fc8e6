"""What `/quota show` displays (one member's numbers in the current window), and a guild's settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.quota.limits import LimitSource
from bot.core.quota.periods import Period


@dataclass(frozen=True)
class QuotaStatus:
    guild_id: int
    user_id: int
    limit: int | None  # the effective limit before grants; None: unlimited
    used: int  # committed charges in the window, less resets
    reserved: int  # images held by live (unexpired) reservations made in the window
    granted: int  # one-off grants in the window
    remaining: int | None  # None: unlimited
    period: Period
    window_start: datetime
    resets_at: datetime
    blocked: bool
    exempt: bool
    source: LimitSource
    server_cap: int | None  # monthly images for the whole guild; None: no cap
    server_used: int  # charges in the guild this calendar month (resets do not lower it)
    server_reserved: int  # live reservations in the guild this calendar month
    server_resets_at: datetime  # start of next month

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def allowance(self) -> int | None:
        """The limit plus this window's grants (what `used + reserved` may reach)."""
        if self.blocked:
            return 0
        return None if self.limit is None else self.limit + self.granted

    @property
    def server_remaining(self) -> int | None:
        if self.server_cap is None:
            return None
        return max(0, self.server_cap - self.server_used - self.server_reserved)


@dataclass(frozen=True)
class GuildQuotaSettings:
    """Everything a guild has configured (limits, roles, cap, audit channel, moderator role)."""

    guild_id: int
    default_limit: int | None  # None: the global default applies
    period: Period | None  # None: the bot's default period applies
    effective_period: Period
    global_default_limit: int | None  # None: unlimited
    server_cap: int | None
    audit_channel_id: int | None
    moderator_role_id: int | None
    role_limits: Mapping[int, int] = field(default_factory=dict)
    exempt_roles: frozenset[int] = frozenset()
