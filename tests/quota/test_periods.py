"""Quota windows in UTC; no database needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.core.quota.periods import Period, month_window


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_window_runs_midnight_to_midnight_utc() -> None:
    assert Period.DAILY.window(at(2025, 1, 15, 23, 59, 59)) == (at(2025, 1, 15), at(2025, 1, 16))
    assert Period.DAILY.window(at(2025, 1, 16)) == (at(2025, 1, 16), at(2025, 1, 17))


def test_weekly_window_is_the_iso_week_from_monday() -> None:
    # 2025-01-15 is a Wednesday; 2025-01-13 the Monday before it; Sunday 19th still belongs to it.
    assert Period.WEEKLY.window(at(2025, 1, 15, 12)) == (at(2025, 1, 13), at(2025, 1, 20))
    assert Period.WEEKLY.window(at(2025, 1, 19, 23, 59)) == (at(2025, 1, 13), at(2025, 1, 20))
    assert Period.WEEKLY.window(at(2025, 1, 20)) == (at(2025, 1, 20), at(2025, 1, 27))
    # An ISO week that spans the new year.
    assert Period.WEEKLY.window(at(2025, 1, 1)) == (at(2024, 12, 30), at(2025, 1, 6))


def test_monthly_window_is_the_calendar_month_including_december() -> None:
    assert Period.MONTHLY.window(at(2024, 2, 29, 18)) == (at(2024, 2, 1), at(2024, 3, 1))
    assert Period.MONTHLY.window(at(2024, 12, 31, 23, 59)) == (at(2024, 12, 1), at(2025, 1, 1))
    assert month_window(at(2025, 1, 1)) == (at(2025, 1, 1), at(2025, 2, 1))


def test_windows_are_computed_in_utc_whatever_the_offset_given() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 08:00 on the 16th in Tokyo is still the 15th in UTC.
    assert Period.DAILY.window(datetime(2025, 1, 16, 8, tzinfo=tokyo)) == (at(2025, 1, 15), at(2025, 1, 16))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Period.DAILY.window(datetime(2025, 1, 15))
