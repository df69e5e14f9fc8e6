"""Quota windows. There is no cron: usage is summed over the window that contains "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.core.clock import utcnow
from bot.core.i18n import Text, tr

__all__ = ["Period", "month_window", "utcnow"]


class Period(StrEnum):
    DAILY = "daily"  # 00:00 UTC to 00:00 UTC
    WEEKLY = "weekly"  # ISO week: Monday 00:00 UTC to the next Monday
    MONTHLY = "monthly"  # the first of the month 00:00 UTC to the first of the next

    @property
    def noun(self) -> str:
        return {Period.DAILY: "day", Period.WEEKLY: "week", Period.MONTHLY: "month"}[self]

    @property
    def this(self) -> Text:
        """The current window as members say it: "today", "this week", "this month"."""
        return {Period.DAILY: tr("today"), Period.WEEKLY: tr("this week"), Period.MONTHLY: tr("this month")}[self]

    @property
    def per(self) -> Text:
        return {Period.DAILY: tr("per day"), Period.WEEKLY: tr("per week"), Period.MONTHLY: tr("per month")}[self]

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The half-open window `[start, end)` in UTC that contains `now`."""
        if now.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.DAILY:
            return day, day + timedelta(days=1)
        if self is Period.WEEKLY:
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        return month_window(now)


def month_window(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) that contains `now`; the server cap always uses this window."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)
