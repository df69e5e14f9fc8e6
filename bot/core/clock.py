"""The one clock: timezone-aware UTC, so a local time never reaches the database."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
