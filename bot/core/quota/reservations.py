"""Reserve, commit and release images against a member's effective limit.

The arithmetic, for one member of one guild, in the window `W = period.window(now)`
(the guild's period, else the bot's default):

    used      = max(0, Σ charge + Σ reset)   ledger rows whose effective_at is in W
                                             (a reset row is negative; a charge counts at the
                                             moment its reservation was made, so a job that
                                             ends after midnight is charged to the day it began)
    granted   = Σ grant                      ledger rows whose effective_at is in W
    reserved  = Σ images of reservations that are live, not expired (expires_at > now) and
                were made in W
    allowance = limit + granted              (limit from `limits.resolve_limit`; None: unlimited)
    remaining = max(0, allowance - used - reserved)

`reserve(n)` succeeds iff the member is not blocked, `n <= remaining` (or unlimited) and, when
the guild has a server cap, `server_used + server_reserved + n <= server_cap` over the calendar
month M (UTC) that holds now, where `server_used = Σ charge in M` for the whole guild (resets
forgive a member but do not lower it) and `server_reserved` is the guild's live reservations
made in M. The cap applies to exempt members too: it is the server's spend.

`charge_delivered(job, k)` charges k images as their message is recorded (a set posted in
parts); the reservation then holds `n - charged`. `commit(job, produced)` charges
`c = min(max(produced, 0), n)` (less what was charged already) and releases `n - c`; `release`
returns what is not charged. Both act only on a live reservation, so a second call changes nothing. A
reservation not settled by `expires_at` stops counting at once and `settle_expired` writes its
`expire` row; if the job then delivers after all, `commit` still charges what was produced
(the images were made), which is the one way usage can pass the limit.

Atomicity: every write runs in `Database.transaction()` (SQLite: the database write lock).
On PostgreSQL each writer locks the member's `quota_members` row (and, when a server cap is
set, the guild's `quota_guilds` row, always after the member row), so concurrent
reservations for one member, or against one server cap, queue instead of overbooking. The one
exception, the common end of a job (`commit` of a live reservation nothing was charged against),
locks only the reservation's row, in the UPDATE that settles it: it reads nothing the member's
lock guards and takes no lock after, and a reservation beside it sees those images held or
settled, never in between.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.quota.base import QuotaBase
from bot.core.quota.errors import MemberBlocked, QuotaExceeded, ServerCapReached
from bot.core.quota.limits import resolve_limit
from bot.core.quota.periods import month_window
from bot.core.quota.status import QuotaStatus
from bot.storage import quota_ledger as ledger
from bot.storage import quota_reservations as reservations
from bot.storage.quota_ledger import LedgerEntry, LedgerKind, MemberTotals, ReservationState
from bot.storage.quota_reservations import Reservation
from bot.storage.quota_settings import GuildRow, MemberRow, lock_member, read_guild, read_roles
from bot.storage.quota_snapshot import QuotaSnapshot, read_snapshot

log = logging.getLogger(__name__)


class QuotaReservations(QuotaBase):
    """A member's numbers, and the reservations their jobs hold against them."""

    # --- reading --------------------------------------------------------------------------

    async def status(self, guild_id: int, user_id: int, role_ids: Sequence[int]) -> QuotaStatus:
        async with self._db.engine.connect() as conn:
            now = self._clock()
            snapshot = await self._snapshot(conn, guild_id, user_id, now)
            return await self._status(conn, snapshot.guild, snapshot.member, role_ids, now, totals=snapshot.totals)

    async def _snapshot(self, conn: AsyncConnection, guild_id: int, user_id: int, now: datetime) -> QuotaSnapshot:
        """Member, guild and the member's totals in the default period's window, in one read."""
        start, end = self._default_period.window(now)
        return await read_snapshot(conn, guild_id, user_id, start, end, now)

    async def _status(
        self,
        conn: AsyncConnection,
        guild: GuildRow,
        member: MemberRow,
        role_ids: Sequence[int],
        now: datetime,
        *,
        with_server_totals: bool = True,
        totals: MemberTotals | None = None,
    ) -> QuotaStatus:
        """`totals`, when given, are the member's in the default period's window (a snapshot's)."""
        roles = await read_roles(conn, guild.guild_id, role_ids)
        effective = resolve_limit(
            blocked=member.blocked,
            exempt=any(role.exempt for role in roles),
            member_limit=member.limit,
            role_limits=[role.limit for role in roles if role.limit is not None],
            guild_default=guild.default_limit,
            global_default=self._global_default,
        )
        period = self._period(guild)
        start, end = period.window(now)
        if totals is None or period != self._default_period:
            totals = await ledger.member_totals(conn, guild.guild_id, member.user_id, start, end, now)
        month_start, month_end = month_window(now)
        server_used = server_reserved = 0
        if with_server_totals or guild.server_cap is not None:
            server_used, server_reserved = await ledger.server_totals(
                conn, guild.guild_id, month_start, month_end, now
            )
        if effective.limit is None:
            remaining = None
        elif member.blocked:
            remaining = 0
        else:
            remaining = max(0, effective.limit + totals.granted - totals.used - totals.reserved)
        # One keyword a field of `QuotaStatus`: `duplicates` pairs this with other long keyword
        # calls (bot/app.py) by shape alone; spelling each field out is the point, so it stays.
        return QuotaStatus(
            guild_id=guild.guild_id,
            user_id=member.user_id,
            limit=effective.limit,
            used=totals.used,
            reserved=totals.reserved,
            granted=totals.granted,
            remaining=remaining,
            period=period,
            window_start=start,
            resets_at=end,
            blocked=member.blocked,
            exempt=effective.source == "exempt",
            source=effective.source,
            server_cap=guild.server_cap,
            server_used=server_used,
            server_reserved=server_reserved,
            server_resets_at=month_end,
        )

    async def reservation(self, job_id: str) -> Reservation | None:
        async with self._db.engine.connect() as conn:
            return await reservations.find(conn, job_id)

    async def history(self, guild_id: int, user_id: int, limit: int = 20) -> list[LedgerEntry]:
        """The member's ledger rows, newest first: what explains their numbers."""
        async with self._db.engine.connect() as conn:
            return await ledger.entries(conn, guild_id, user_id, limit)

    # --- a job's reservation ----------------------------------------------------------------

    async def reserve(
        self,
        *,
        guild_id: int,
        user_id: int,
        role_ids: Sequence[int],
        job_id: str,
        images: int,
        conn: AsyncConnection | None = None,
        new_job: bool = False,
    ) -> QuotaStatus:
        """Hold `images` for `job_id`, or raise `MemberBlocked`, `QuotaExceeded`, `ServerCapReached`.

        Calling it again for a job whose reservation is live changes nothing (a retried submit);
        `new_job` (the job was stored in this transaction, so it holds none) skips looking.
        """
        if images < 1:
            raise ValueError(f"a job reserves at least one image, not {images}")
        async with self._db.join(conn) as conn:
            now = self._clock()
            row_locks = conn.dialect.name == "postgresql"  # SQLite: the transaction locks the database
            if row_locks:  # first, as everywhere (see the module's docstring)
                await lock_member(conn, guild_id, user_id)
            snapshot = await self._snapshot(conn, guild_id, user_id, now)
            member, guild = snapshot.member, snapshot.guild
            if guild.server_cap is not None and row_locks:
                guild = await read_guild(conn, guild_id, lock=True)
            if not new_job and await self._held_already(conn, job_id, guild_id, user_id):
                return await self._status(conn, guild, member, role_ids, now, totals=snapshot.totals)

            # Without a server cap the guild's monthly totals don't decide anything here.
            status = await self._status(conn, guild, member, role_ids, now, with_server_totals=False,
                                        totals=snapshot.totals)
            _check_room(status, images)
            held = Reservation(
                job_id=job_id,
                guild_id=guild_id,
                user_id=user_id,
                images=images,
                charged=0,
                state=ReservationState.LIVE,
                reserved_at=now,
                expires_at=now + self._ttl,
                settled_at=None,
            )
            await reservations.insert(conn, held)
            await self._record_job(conn, held, LedgerKind.RESERVE, images, None, now)
            remaining = None if status.remaining is None else status.remaining - images
            return dataclasses.replace(
                status,
                reserved=status.reserved + images,
                remaining=remaining,
                server_reserved=status.server_reserved + images if status.server_cap is not None else 0,
            )

    async def _held_already(self, conn: AsyncConnection, job_id: str, guild_id: int, user_id: int) -> bool:
        """True if this member's reservation for the job is live; raise if the job has another one."""
        existing = await reservations.find(conn, job_id)
        if existing is None:
            return False
        if existing.state is ReservationState.LIVE and (existing.guild_id, existing.user_id) == (guild_id, user_id):
            return True
        raise ValueError(f"job {job_id} already has a reservation ({existing.state})")

    async def commit(self, job_id: str, produced: int, *, conn: AsyncConnection | None = None) -> None:
        """Charge the images the job produced (at most those reserved) and return the rest."""
        async with self._db.join(conn) as conn:
            now = self._clock()
            # The common end (live, nothing charged yet) settles in the statement that finds it.
            # It takes no member lock first: it needs none after, so it cannot deadlock, and a
            # reservation running beside it sees the reservation held or settled, never between.
            settled = await reservations.commit_uncharged(conn, job_id, max(produced, 0), now)
            if settled is not None:
                before = dataclasses.replace(settled, state=ReservationState.LIVE, charged=0, settled_at=None)
                await self._record_commit(conn, before, settled.charged, now)
                return
            found = await self._lock_reservation(conn, job_id)
            if found is None:
                log.warning("commit for job %s, which has no reservation", job_id)
                return
            if found.state not in (ReservationState.LIVE, ReservationState.EXPIRED):
                return  # settled already
            charged = min(max(produced, 0), found.images)
            await reservations.settle(conn, found.job_id, ReservationState.COMMITTED, now,
                                      charged=max(charged, found.charged))
            await self._record_commit(conn, found, charged, now)

    async def _record_commit(self, conn: AsyncConnection, found: Reservation, charged: int, now: datetime) -> None:
        """The ledger rows of committing `found` (as it was before) to `charged` images."""
        returned = 0 if found.state is ReservationState.EXPIRED else found.images - charged
        more = charged - found.charged  # what `charge_delivered` has not charged already
        if found.state is ReservationState.EXPIRED:
            log.warning("job %s delivered %d images after its reservation expired", found.job_id, charged)
            why = "delivered after the reservation had expired"
        else:
            why = f"{charged} of {found.images} delivered"
        if more > 0:
            await self._record_job(conn, found, LedgerKind.CHARGE, more, why, now, found.reserved_at)
        if returned:
            why = f"only {charged} of {found.images} produced"
            await self._record_job(conn, found, LedgerKind.RELEASE, returned, why, now)

    async def charge_delivered(self, job_id: str, images: int, *, conn: AsyncConnection) -> None:
        """Charge `images` just posted, in the transaction that records their message.

        The reservation stays open for the rest of the job; `commit` at its end charges only what
        this has not. So a crash between two messages of a set leaves exactly the posted images
        charged, and a resumed job never charges them twice.
        """
        if images <= 0:
            return
        now = self._clock()
        found = await self._lock_reservation(conn, job_id)
        if found is None or found.state not in (ReservationState.LIVE, ReservationState.EXPIRED):
            return
        images = min(images, found.images - found.charged)
        if images <= 0:
            return
        await reservations.add_charged(conn, job_id, images)
        why = f"{images} of {found.images} delivered"
        await self._record_job(conn, found, LedgerKind.CHARGE, images, why, now, found.reserved_at)

    async def release(self, job_id: str, reason: str, *, conn: AsyncConnection | None = None) -> None:
        """Return everything the job still holds (relay failure, content block, cancel, crash)."""
        async with self._db.join(conn) as conn:
            now = self._clock()
            found = await self._lock_reservation(conn, job_id)
            if found is None or found.state is not ReservationState.LIVE:
                return
            if found.charged:  # part was delivered: the job ends committed to what it posted
                await reservations.settle(conn, found.job_id, ReservationState.COMMITTED, now, charged=found.charged)
            else:
                await reservations.settle(conn, found.job_id, ReservationState.RELEASED, now)
            await self._record_job(conn, found, LedgerKind.RELEASE, found.images - found.charged, reason, now)

    async def settle_expired(self) -> list[str]:
        """Write off reservations past their expiry (the job crashed or hung); their job ids."""
        now = self._clock()
        async with self._db.engine.connect() as conn:
            candidates = await reservations.expired_job_ids(conn, now)
        settled = []
        for job_id in candidates:
            async with self._db.transaction() as conn:
                found = await self._lock_reservation(conn, job_id)
                if found is None or found.state is not ReservationState.LIVE or found.expires_at > now:
                    continue
                await reservations.settle(conn, found.job_id, ReservationState.EXPIRED, now, charged=found.charged)
                why = f"not settled within {self._ttl}"
                await self._record_job(conn, found, LedgerKind.EXPIRE, found.images - found.charged, why, now)
                settled.append(job_id)
        return settled

    async def _lock_reservation(self, conn: AsyncConnection, job_id: str) -> Reservation | None:
        """The reservation, with its member's row locked first (the same order `reserve` uses)."""
        if conn.dialect.name == "sqlite":  # the transaction locks the database
            return await reservations.find(conn, job_id)
        return await reservations.find_locked(conn, job_id)

    @staticmethod
    async def _record_job(
        conn: AsyncConnection,
        found: Reservation,
        kind: LedgerKind,
        amount: int,
        reason: str | None,
        now: datetime,
        effective_at: datetime | None = None,
    ) -> None:
        """The job's ledger row: `effective_at` (default now) is the moment it counts for."""
        await ledger.record(
            conn, guild_id=found.guild_id, user_id=found.user_id, kind=kind, amount=amount, job_id=found.job_id,
            reason=reason, now=now, effective_at=effective_at,
        )


def _check_room(status: QuotaStatus, images: int) -> None:
    """Raise unless the member may have `images` more (the server cap included)."""
    if status.blocked:
        raise MemberBlocked(status, images)
    if status.remaining is not None and images > status.remaining:
        raise QuotaExceeded(status, images)
    server_remaining = status.server_remaining
    if server_remaining is not None and images > server_remaining:
        raise ServerCapReached(status, status.server_resets_at, images)
