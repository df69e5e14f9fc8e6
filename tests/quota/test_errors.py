"""Refusals carry a message for the member that says when things change."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.quota import MemberBlocked, Period, QuotaExceeded, QuotaStatus, ServerCapReached

RESETS = datetime(2025, 1, 16, tzinfo=UTC)
NEXT_MONTH = datetime(2025, 2, 1, tzinfo=UTC)


def status(**overrides: object) -> QuotaStatus:
    values: dict = {
        "guild_id": 1,
        "user_id": 2,
        "limit": 10,
        "used": 8,
        "reserved": 2,
        "granted": 0,
        "remaining": 0,
        "period": Period.DAILY,
        "window_start": datetime(2025, 1, 15, tzinfo=UTC),
        "resets_at": RESETS,
        "blocked": False,
        "exempt": False,
        "source": "guild",
        "server_cap": None,
        "server_used": 0,
        "server_reserved": 0,
        "server_resets_at": NEXT_MONTH,
    }
    values.update(overrides)
    return QuotaStatus(**values)


def test_exhausted_quota_names_the_reset_as_discord_timestamp_and_utc() -> None:
    message = QuotaExceeded(status(), requested=1).user_message

    assert f"<t:{int(RESETS.timestamp())}:R>" in message
    assert "2025-01-16 00:00 UTC" in message
    assert "10 images" in message and "day" in message
    assert "2 images held by jobs still running" in message


def test_asking_for_more_than_is_left_says_how_many_are_left() -> None:
    message = QuotaExceeded(status(used=7, reserved=0, remaining=3, granted=2), requested=4).user_message

    assert "3 images left of 12" in message
    assert "asks for 4 images" in message
    assert "2025-01-16 00:00 UTC" in message


def test_server_cap_message_says_generation_resumes_next_month() -> None:
    error = ServerCapReached(status(server_cap=500, server_used=500), NEXT_MONTH, requested=1)

    assert f"<t:{int(NEXT_MONTH.timestamp())}:R>" in error.user_message
    assert "2025-02-01 00:00 UTC" in error.user_message
    assert "500 images" in error.user_message and "moderator" in error.user_message


def test_blocked_message_says_it_does_not_reset_by_itself() -> None:
    message = MemberBlocked(status(blocked=True, limit=0, source="blocked")).user_message
    assert "moderator" in message and "does not reset" in message


def test_log_text_carries_the_numbers() -> None:
    assert "used=8 reserved=2" in str(QuotaExceeded(status(), requested=1))
