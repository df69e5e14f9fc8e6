"""The `quota_reservations` rows: images a job holds against its member's limit until it settles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import prepared
from bot.storage.quota_ledger import ReservationState
from bot.storage.rows import from_row
from bot.storage.tables import quota_members, quota_reservations

reservations = quota_reservations


@dataclass(frozen=True)
class Reservation:
    job_id: str
    guild_id: int
    user_id: int
    images: int
    charged: int
    state: ReservationState
    reserved_at: datetime
    expires_at: datetime
    settled_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Reservation:
        return from_row(cls, row, state=ReservationState(row["state"]))


# Built once: these run for every job (statement construction costs more than the statement).
_INSERT = reservations.insert()
_FIND = sa.select(reservations).where(reservations.c.job_id == sa.bindparam("job_id"))
_FIND_LOCKED = _FIND.with_for_update()
# (A bound name may not be a column's in an UPDATE: hence the `b_`.)
_SETTLE = reservations.update().where(reservations.c.job_id == sa.bindparam("b_job_id")).values(
    state=sa.bindparam("b_state"), charged=sa.bindparam("b_charged"), settled_at=sa.bindparam("b_settled_at"))
# A live reservation nothing was charged against yet, committed to `b_wanted` images (at most
# what it holds) in the statement that finds it; the row as it is after.
_COMMIT_UNCHARGED = reservations.update().where(
    reservations.c.job_id == sa.bindparam("b_job_id"), reservations.c.state == ReservationState.LIVE.value,
    reservations.c.charged == 0,
).values(
    state=ReservationState.COMMITTED.value, settled_at=sa.bindparam("b_settled_at"),
    charged=sa.case((reservations.c.images < sa.bindparam("b_wanted"), reservations.c.images),
                    else_=sa.bindparam("b_wanted")),
).returning(*reservations.c)
# The member row of a job's reservation, found through the reservation and locked (PostgreSQL).
# `reserve` made the row when it locked it; it is never deleted.
_LOCK_MEMBER = sa.select(quota_members.c.user_id).where(
    sa.tuple_(quota_members.c.guild_id, quota_members.c.user_id).in_(
        sa.select(reservations.c.guild_id, reservations.c.user_id)
        .where(reservations.c.job_id == sa.bindparam("job_id"))
    )
).with_for_update()


async def insert(conn: AsyncConnection, held: Reservation) -> None:
    await prepared.run(conn, _INSERT, {**vars(held), "state": held.state.value})


async def find(conn: AsyncConnection, job_id: str, *, lock: bool = False) -> Reservation | None:
    row = (await conn.execute(_FIND_LOCKED if lock else _FIND, {"job_id": job_id})).mappings().first()
    return Reservation.from_row(row) if row is not None else None


async def find_locked(conn: AsyncConnection, job_id: str) -> Reservation | None:
    """The reservation, locked after its member's row: the lock order `reserve` uses (PostgreSQL)."""
    await conn.execute(_LOCK_MEMBER, {"job_id": job_id})
    return await find(conn, job_id, lock=True)


async def settle(
    conn: AsyncConnection, job_id: str, state: ReservationState, now: datetime, *, charged: int = 0
) -> None:
    await conn.execute(_SETTLE, {"b_job_id": job_id, "b_state": state.value, "b_charged": charged, "b_settled_at": now})


async def commit_uncharged(conn: AsyncConnection, job_id: str, wanted: int, now: datetime) -> Reservation | None:
    """Commit the job's reservation to `wanted` images (at most those it holds) if it is live
    and nothing was charged against it yet, the common end of a job; the reservation as it is
    now, or None (then nothing changed). One statement: no read, no lock taken before."""
    row = (await prepared.run(conn, _COMMIT_UNCHARGED, {"b_job_id": job_id, "b_wanted": wanted,
                                                        "b_settled_at": now})).first_mapping()
    return Reservation.from_row(row) if row is not None else None


async def expired_job_ids(conn: AsyncConnection, now: datetime) -> list[str]:
    """Jobs whose live reservation is past its expiry, the oldest first."""
    query = (
        sa.select(reservations.c.job_id)
        .where(reservations.c.state == ReservationState.LIVE.value, reservations.c.expires_at <= now)
        .order_by(reservations.c.expires_at)
    )
    return list((await conn.execute(query)).scalars().all())


async def add_charged(conn: AsyncConnection, job_id: str, images: int) -> None:
    """Count `images` more as delivered on a reservation that stays open (a set posted in parts)."""
    await conn.execute(
        reservations.update()
        .where(reservations.c.job_id == job_id)
        .values(charged=reservations.c.charged + images)
    )
