"""What reservations and moderation share: the database, the bot's defaults and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.clock import utcnow
from bot.core.quota.limits import check_limit
from bot.core.quota.periods import Period
from bot.storage.database import Database
from bot.storage.quota_settings import GuildRow


class QuotaBase:
    def __init__(
        self,
        db: Database,
        *,
        global_default_limit: int | None,
        default_period: Period = Period.DAILY,
        reservation_ttl: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        check_limit(global_default_limit, "global_default_limit")
        if reservation_ttl <= timedelta(0):
            raise ValueError("reservation_ttl must be positive")
        self._db = db
        self._global_default = global_default_limit
        self._default_period = Period(default_period)
        self._ttl = reservation_ttl
        self._clock = clock

    def _period(self, guild: GuildRow) -> Period:
        """The guild's period, else the bot's default."""
        return Period(guild.period) if guild.period else self._default_period
