"""How numbers are worded for members, so every message says a size the same way."""

from __future__ import annotations

from bot.core.i18n import Text, tr


def number(value: float) -> str:
    """One decimal at most, none when it is whole: 10 -> "10", 12.34 -> "12.3"."""
    return f"{value:.1f}".removesuffix(".0")


def megabytes(size: int) -> str:
    """A byte count as members read it: 10485760 -> "10 MB", 1572864 -> "1.5 MB"."""
    return f"{number(size / 2**20)} MB"


def size_over(size: int, limit: int) -> Text | str:
    """`size` in MB, worded so it never reads as equal to the `limit` it exceeds."""
    shown, allowed = megabytes(size), megabytes(limit)
    return tr("just over {limit}", limit=allowed) if shown == allowed else shown

