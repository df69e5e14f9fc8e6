"""Guild, role and member quota settings: reading, locking and updating their rows.

Locking is how reservations stay atomic on PostgreSQL: a writer first makes sure the row
exists (`INSERT … ON CONFLICT DO NOTHING`) and then takes it with `SELECT … FOR UPDATE`, so
writers for one member (or one guild) queue behind each other. On SQLite the surrounding
`Database.transaction()` already holds the database's write lock and `FOR UPDATE` is not
rendered. Lock order, to avoid deadlocks: member row, then guild row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import upsert
from bot.storage.rows import from_row
from bot.storage.tables import quota_guilds, quota_members, quota_roles


@dataclass(frozen=True)
class GuildRow:
    guild_id: int
    default_limit: int | None = None
    period: str | None = None  # a `Period` value; the core turns it into one
    server_cap: int | None = None
    audit_channel_id: int | None = None
    moderator_role_id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> GuildRow:
        return from_row(cls, row)


@dataclass(frozen=True)
class MemberRow:
    guild_id: int
    user_id: int
    limit: int | None = None
    blocked: bool = False


@dataclass(frozen=True)
class RoleRow:
    role_id: int
    limit: int | None
    exempt: bool


async def ensure_row(conn: AsyncConnection, table: sa.Table, **key: int) -> None:
    """Insert the row with only its key if it is missing (other columns take defaults)."""
    await conn.execute(upsert(conn.dialect.name, table, key=tuple(key)), key)


# Built once: these run for every job (statement construction costs more than the statement).
_GUILD = sa.select(quota_guilds).where(quota_guilds.c.guild_id == sa.bindparam("guild_id"))
_GUILD_LOCKED = _GUILD.with_for_update()
_MEMBER = sa.select(quota_members.c.image_limit, quota_members.c.blocked).where(
    quota_members.c.guild_id == sa.bindparam("guild_id"), quota_members.c.user_id == sa.bindparam("user_id")
)
_MEMBER_LOCKED = _MEMBER.with_for_update()


async def read_guild(conn: AsyncConnection, guild_id: int, *, lock: bool = False) -> GuildRow:
    if lock:
        await ensure_row(conn, quota_guilds, guild_id=guild_id)
    row = (await conn.execute(_GUILD_LOCKED if lock else _GUILD, {"guild_id": guild_id})).mappings().first()
    return GuildRow.from_row(row) if row is not None else GuildRow(guild_id)


async def read_member(conn: AsyncConnection, guild_id: int, user_id: int, *, lock: bool = False) -> MemberRow:
    if lock:
        await ensure_row(conn, quota_members, guild_id=guild_id, user_id=user_id)
    row = (await conn.execute(_MEMBER_LOCKED if lock else _MEMBER,
                              {"guild_id": guild_id, "user_id": user_id})).first()
    if row is None:
        return MemberRow(guild_id, user_id)
    return MemberRow(guild_id, user_id, limit=row.image_limit, blocked=bool(row.blocked))


async def read_roles(
    conn: AsyncConnection, guild_id: int, role_ids: Iterable[int] | None = None
) -> list[RoleRow]:
    """The guild's role rules; only those of `role_ids` when given."""
    if role_ids is not None:
        role_ids = list(role_ids)
        if not role_ids:
            return []
    query = sa.select(quota_roles.c.role_id, quota_roles.c.image_limit, quota_roles.c.exempt).where(
        quota_roles.c.guild_id == guild_id
    )
    if role_ids is not None:
        query = query.where(quota_roles.c.role_id.in_(list(role_ids)))
    rows = (await conn.execute(query.order_by(quota_roles.c.role_id))).all()
    return [RoleRow(row.role_id, row.image_limit, bool(row.exempt)) for row in rows]


async def lock_role(conn: AsyncConnection, guild_id: int, role_id: int) -> RoleRow:
    await ensure_row(conn, quota_roles, guild_id=guild_id, role_id=role_id)
    query = (
        sa.select(quota_roles.c.image_limit, quota_roles.c.exempt)
        .where(quota_roles.c.guild_id == guild_id, quota_roles.c.role_id == role_id)
        .with_for_update()
    )
    row = (await conn.execute(query)).one()
    return RoleRow(role_id, row.image_limit, bool(row.exempt))


async def update_guild(conn: AsyncConnection, guild_id: int, now: datetime, **values: Any) -> None:
    await _update(conn, quota_guilds, [quota_guilds.c.guild_id == guild_id], now, values)


async def update_member(conn: AsyncConnection, guild_id: int, user_id: int, now: datetime, **values: Any) -> None:
    where = [quota_members.c.guild_id == guild_id, quota_members.c.user_id == user_id]
    await _update(conn, quota_members, where, now, values)


async def update_role(conn: AsyncConnection, guild_id: int, role_id: int, now: datetime, **values: Any) -> None:
    where = [quota_roles.c.guild_id == guild_id, quota_roles.c.role_id == role_id]
    await _update(conn, quota_roles, where, now, values)


async def _update(
    conn: AsyncConnection, table: sa.Table, where: list[sa.ColumnElement[bool]], now: datetime, values: dict[str, Any]
) -> None:
    """Set `values` on the rows `where` selects, stamping `updated_at`."""
    await conn.execute(table.update().where(*where).values(updated_at=now, **values))
