"""A member's quota row, their guild's and their totals in one window, read in one statement.

Every job's reservation needs all three; read separately they cost three statements (and their
per-execution overhead) where one does. The totals are for the window the caller names, which
depends on the guild's period: a caller that guessed it wrong reads the totals again
(`quota_ledger.member_totals`). Reads only: on PostgreSQL the member's row is locked before
this (`quota_settings.lock_member`), as the lock order asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import prepared
from bot.storage.quota_ledger import MEMBER_TOTALS, MemberTotals
from bot.storage.quota_settings import GuildRow, MemberRow
from bot.storage.tables import quota_guilds, quota_members


@dataclass(frozen=True)
class QuotaSnapshot:
    member: MemberRow
    guild: GuildRow
    totals: MemberTotals  # in the window asked for


def _member(column: sa.Column[object]) -> sa.Label[object]:
    where = (quota_members.c.guild_id == sa.bindparam("guild_id"), quota_members.c.user_id == sa.bindparam("user_id"))
    return sa.select(column).where(*where).scalar_subquery().label(f"member_{column.name}")


def _guild(column: sa.Column[object]) -> sa.Label[object]:
    return sa.select(column).where(quota_guilds.c.guild_id == sa.bindparam("guild_id")).scalar_subquery().label(
        f"guild_{column.name}"
    )


# A missing row reads as NULLs: the defaults its dataclass gives.
_SNAPSHOT = sa.select(
    _member(quota_members.c.image_limit),
    _member(quota_members.c.blocked),
    _guild(quota_guilds.c.default_limit),
    _guild(quota_guilds.c.period),
    _guild(quota_guilds.c.server_cap),
    _guild(quota_guilds.c.audit_channel_id),
    _guild(quota_guilds.c.moderator_role_id),
    *MEMBER_TOTALS,
)


async def read_snapshot(
    conn: AsyncConnection, guild_id: int, user_id: int, start: datetime, end: datetime, now: datetime
) -> QuotaSnapshot:
    """The member's and guild's settings, and the member's totals in [start, end) as of `now`."""
    row = (await prepared.run(conn, _SNAPSHOT, {"guild_id": guild_id, "user_id": user_id, "start": start,
                                                "end": end, "now": now})).one_mapping()
    return QuotaSnapshot(
        member=MemberRow(guild_id, user_id, limit=row["member_image_limit"], blocked=bool(row["member_blocked"])),
        guild=GuildRow(
            guild_id,
            default_limit=row["guild_default_limit"],
            period=row["guild_period"],
            server_cap=row["guild_server_cap"],
            audit_channel_id=row["guild_audit_channel_id"],
            moderator_role_id=row["guild_moderator_role_id"],
        ),
        totals=MemberTotals.from_sums(row["used"], row["granted"], row["reserved"]),
    )
