"""The quota ledger: one append-only row per change, and the sums the numbers come from.

This module is the one place that writes `quota_ledger`. Sums are single statements, so on
PostgreSQL they read one snapshot: a job settling at the same moment is seen either as a
live reservation or as a charge, never as both or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import prepared
from bot.storage.database import one_of
from bot.storage.rows import from_row
from bot.storage.tables import quota_ledger, quota_reservations

ledger = quota_ledger
reservations = quota_reservations


class LedgerKind(StrEnum):
    # Job accounting; `amount` is a number of images.
    RESERVE = "reserve"  # held against the limit while the job runs
    CHARGE = "charge"  # images delivered; counts in the window of the reservation
    RELEASE = "release"  # held images returned (failure, block, fewer images than asked)
    EXPIRE = "expire"  # a reservation outlived its TTL (e.g. a crash) and was returned
    # Moderator changes to a member's numbers.
    GRANT = "grant"  # one-off extra images for the current window
    RESET = "reset"  # negative adjustment that zeroes the window's usage
    # Moderator settings; `amount` is the new limit where there is one, `detail` the rest.
    MEMBER_LIMIT = "member_limit"
    BLOCK = "block"
    UNBLOCK = "unblock"
    GUILD_DEFAULT = "guild_default"
    ROLE_LIMIT = "role_limit"
    ROLE_EXEMPT = "role_exempt"
    SERVER_CAP = "server_cap"
    AUDIT_CHANNEL = "audit_channel"
    MODERATOR_ROLE = "moderator_role"


class ReservationState(StrEnum):
    LIVE = "live"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


USAGE_KINDS = (LedgerKind.CHARGE.value, LedgerKind.RESET.value)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    guild_id: int
    user_id: int | None
    kind: LedgerKind
    amount: int | None
    job_id: str | None
    moderator_id: int | None
    reason: str | None
    detail: dict[str, Any]
    created_at: datetime  # when the row was written
    effective_at: datetime  # the moment it counts for (a charge: when its reservation was made)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> LedgerEntry:
        return from_row(cls, row, kind=LedgerKind(row["kind"]), detail=dict(row["detail"] or {}))

    def describe(self) -> str:
        """One plain line for the audit channel and ledger reviews (no mentions, no markup)."""
        n = self.amount or 0
        job = f" for job {self.job_id}" if self.job_id else ""
        limit = "unset" if self.amount is None else str(self.amount)
        role = self.detail.get("role_id")
        channel = self.detail.get("audit_channel_id") or "none"
        moderator_role = self.detail.get("moderator_role_id") or "none"
        text = {
            LedgerKind.RESERVE: f"reserved {_images(n)}{job}",
            LedgerKind.CHARGE: f"charged {_images(n)}{job}",
            LedgerKind.RELEASE: f"returned {_images(n)}{job}",
            LedgerKind.EXPIRE: f"reservation of {_images(n)}{job} expired and was returned",
            LedgerKind.GRANT: f"granted {_images(n)} extra for this period",
            LedgerKind.RESET: f"usage reset ({n:+d})",
            LedgerKind.MEMBER_LIMIT: f"member limit set to {limit}",
            LedgerKind.BLOCK: "blocked from generating",
            LedgerKind.UNBLOCK: "unblocked",
            LedgerKind.GUILD_DEFAULT: f"server default limit set to {limit}, "
            f"period {self.detail.get('period') or 'default'}",
            LedgerKind.ROLE_LIMIT: f"role {role} limit set to {limit}",
            LedgerKind.ROLE_EXEMPT: f"role {role} "
            + ("made exempt" if self.detail.get("exempt") else "no longer exempt"),
            LedgerKind.SERVER_CAP: f"server monthly cap set to {limit}",
            LedgerKind.AUDIT_CHANNEL: f"audit channel set to {channel}",
            LedgerKind.MODERATOR_ROLE: f"moderator role set to {moderator_role}",
        }[self.kind]
        return f"{text}: {self.reason}" if self.reason else text


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


async def record(
    conn: AsyncConnection,
    *,
    guild_id: int,
    kind: LedgerKind,
    now: datetime,
    user_id: int | None = None,
    amount: int | None = None,
    job_id: str | None = None,
    moderator_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    effective_at: datetime | None = None,
) -> None:
    await prepared.run(conn, _RECORD, {
        "guild_id": guild_id,
        "user_id": user_id,
        "kind": kind.value,
        "amount": amount,
        "job_id": job_id,
        "moderator_id": moderator_id,
        "reason": reason,
        "detail": detail,
        "created_at": now,
        "effective_at": effective_at or now,
    })


@dataclass(frozen=True)
class MemberTotals:
    used: int
    granted: int
    reserved: int

    @classmethod
    def from_sums(cls, used: int, granted: int, reserved: int) -> MemberTotals:
        """From the sums of `MEMBER_TOTALS` (resets can take `used` below zero; it shows as 0)."""
        return cls(used=max(0, int(used)), granted=int(granted), reserved=int(reserved))


async def member_totals(
    conn: AsyncConnection, guild_id: int, user_id: int, start: datetime, end: datetime, now: datetime
) -> MemberTotals:
    row = (await conn.execute(_MEMBER_TOTALS, {"guild_id": guild_id, "user_id": user_id, "start": start,
                                               "end": end, "now": now})).one()
    return MemberTotals.from_sums(*row)


async def member_usage(
    conn: AsyncConnection, guild_id: int, user_id: int, start: datetime, end: datetime
) -> int:
    """Charges less resets in the window, without clamping (what a reset has to offset)."""
    used = _sum(
        ledger.c.amount,
        ledger.c.guild_id == guild_id,
        ledger.c.user_id == user_id,
        one_of(ledger.c.kind, USAGE_KINDS),
        ledger.c.effective_at >= start,
        ledger.c.effective_at < end,
    )
    return int((await conn.execute(sa.select(used))).scalar_one())


async def server_totals(
    conn: AsyncConnection, guild_id: int, start: datetime, end: datetime, now: datetime
) -> tuple[int, int]:
    """(charged, reserved) for the whole guild in the window. Resets do not lower it:
    a reset forgives a member, but the images were still made."""
    row = (await conn.execute(_SERVER_TOTALS, {"guild_id": guild_id, "start": start, "end": end, "now": now})).one()
    return int(row[0]), int(row[1])


# What a live reservation still holds: images already delivered (and charged) count as used.
HELD = reservations.c.images - reservations.c.charged


def _live_in_window(start: sa.BindParameter[datetime], end: sa.BindParameter[datetime],
                    now: sa.BindParameter[datetime]) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        reservations.c.state == ReservationState.LIVE.value,
        reservations.c.expires_at > now,
        reservations.c.reserved_at >= start,
        reservations.c.reserved_at < end,
    )


def _sum(column: sa.ColumnElement[int], *conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    return sa.select(sa.func.coalesce(sa.func.sum(column), 0)).where(*conditions).scalar_subquery()


# Built once, run with named parameters: these run for every job, and building a statement
# costs more than running it.
_RECORD = ledger.insert()
_GUILD: sa.BindParameter[int] = sa.bindparam("guild_id")
_USER: sa.BindParameter[int] = sa.bindparam("user_id")
_START: sa.BindParameter[datetime] = sa.bindparam("start")
_END: sa.BindParameter[datetime] = sa.bindparam("end")
_NOW: sa.BindParameter[datetime] = sa.bindparam("now")
_MEMBER_ROWS = (ledger.c.guild_id == _GUILD, ledger.c.user_id == _USER,
                ledger.c.effective_at >= _START, ledger.c.effective_at < _END)
# used, granted, reserved: with parameters guild_id, user_id, start, end (the window) and now.
MEMBER_TOTALS = (
    _sum(ledger.c.amount, *_MEMBER_ROWS, one_of(ledger.c.kind, USAGE_KINDS)).label("used"),
    _sum(ledger.c.amount, *_MEMBER_ROWS, ledger.c.kind == LedgerKind.GRANT.value).label("granted"),
    _sum(HELD, reservations.c.guild_id == _GUILD, reservations.c.user_id == _USER,
         *_live_in_window(_START, _END, _NOW)).label("reserved"),
)
_MEMBER_TOTALS = sa.select(*MEMBER_TOTALS)
_SERVER_TOTALS = sa.select(
    _sum(ledger.c.amount, ledger.c.guild_id == _GUILD, ledger.c.kind == LedgerKind.CHARGE.value,
         ledger.c.effective_at >= _START, ledger.c.effective_at < _END),
    _sum(HELD, reservations.c.guild_id == _GUILD, *_live_in_window(_START, _END, _NOW)),
)


async def entries(
    conn: AsyncConnection, guild_id: int, user_id: int | None = None, limit: int = 20
) -> list[LedgerEntry]:
    """Newest first; `user_id=None` gives the whole guild's audit trail."""
    query = sa.select(ledger).where(ledger.c.guild_id == guild_id)
    if user_id is not None:
        query = query.where(ledger.c.user_id == user_id)
    rows = (await conn.execute(query.order_by(ledger.c.id.desc()).limit(limit))).mappings().all()
    return [LedgerEntry.from_row(row) for row in rows]
