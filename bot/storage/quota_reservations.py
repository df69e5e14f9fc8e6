"""The `quota_reservations` rows: images a job holds against its member's limit until it settles."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.quota_ledger import ReservationState
from bot.storage.rows import from_row
from bot.storage.tables import quota_reservations

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


async def insert(conn: AsyncConnection, held: Reservation) -> None:
    await conn.execute(reservations.insert().values({**dataclasses.asdict(held), "state": held.state.value}))


async def find(conn: AsyncConnection, job_id: str, *, lock: bool = False) -> Reservation | None:
    query = sa.select(reservations).where(reservations.c.job_id == job_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return Reservation.from_row(row) if row is not None else None


async def settle(
    conn: AsyncConnection, job_id: str, state: ReservationState, now: datetime, *, charged: int = 0
) -> None:
    await conn.execute(
        reservations.update()
        .where(reservations.c.job_id == job_id)
        .values(state=state.value, charged=charged, settled_at=now)
    )


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
