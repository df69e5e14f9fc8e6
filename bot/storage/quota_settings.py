"""Guild, role and member quota settings: reading, locking and updating their rows.

Locking is how reservations stay atomic on PostgreSQL: a writer takes the row with one
`INSERT … ON CONFLICT DO UPDATE … RETURNING` (a missing row is created with its defaults, an
existing one is rewritten unchanged; either way it stays locked until the transaction ends),
so writers for one member (or one guild) queue behind each other. On SQLite the surrounding
`Database.transaction()` already holds the database's write lock. Lock order, to avoid
deadlocks: member row, then guild row.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import prepared
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


@functools.cache
def _taking(dialect: str, table: sa.Table, key: tuple[str, ...]) -> Executable:
    """The row of `key`, locked for the transaction and returned, created with its defaults if
    missing: one statement (the no-op update is what locks an existing row). Built once."""
    statement = cast(sa.Insert, upsert(dialect, table, key=key, update=key[:1]))
    return statement.returning(*table.c)


async def take_row(conn: AsyncConnection, table: sa.Table, **key: int) -> dict[str, Any]:
    """Lock the row of `key` (creating it if missing) and return it."""
    return (await prepared.run(conn, _taking(conn.dialect.name, table, tuple(key)), key)).one_mapping()


# Built once: these run for every job (statement construction costs more than the statement).
_GUILD = sa.select(quota_guilds).where(quota_guilds.c.guild_id == sa.bindparam("guild_id"))


async def read_guild(conn: AsyncConnection, guild_id: int, *, lock: bool = False) -> GuildRow:
    if lock:
        return GuildRow.from_row(await take_row(conn, quota_guilds, guild_id=guild_id))
    row = (await conn.execute(_GUILD, {"guild_id": guild_id})).mappings().first()
    return GuildRow.from_row(row) if row is not None else GuildRow(guild_id)


async def lock_member(conn: AsyncConnection, guild_id: int, user_id: int) -> MemberRow:
    """The member's row, created if missing and locked for the transaction (see the docstring)."""
    row = await take_row(conn, quota_members, guild_id=guild_id, user_id=user_id)
    return MemberRow(guild_id, user_id, limit=row["image_limit"], blocked=bool(row["blocked"]))


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
    row = await take_row(conn, quota_roles, guild_id=guild_id, role_id=role_id)
    return RoleRow(role_id, row["image_limit"], bool(row["exempt"]))


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
