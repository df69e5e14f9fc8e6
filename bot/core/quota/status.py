"""What `/quota show` displays: one member's numbers in the current window."""

from __future__ import annotations

from dataclasses import dataclass
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
