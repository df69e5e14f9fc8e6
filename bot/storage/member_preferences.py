"""Every SQL statement about members' own defaults (`/prefer`): one row per member, across servers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.core.clock import utcnow
from bot.core.jobs.preferences import NO_PREFERENCES, MemberPreferences
from bot.storage.database import Database
from bot.storage.quota_settings import ensure_row
from bot.storage.tables import member_preferences


class PreferenceStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def get(self, user_id: int) -> MemberPreferences:
        query = sa.select(member_preferences).where(member_preferences.c.user_id == user_id)
        async with self.database.transaction() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return NO_PREFERENCES
        watermark = row["watermark"]
        return MemberPreferences(size=row["size"], count=row["image_count"],
                                 watermark=None if watermark is None else bool(watermark))

    async def update(self, user_id: int, *, size: str | None = None, count: int | None = None,
                     watermark: bool | None = None) -> MemberPreferences:
        """Set the given defaults (None leaves one as it is) and return them all."""
        values: dict[str, Any] = {name: value for name, value in
                                  (("size", size), ("image_count", count), ("watermark", watermark))
                                  if value is not None}
        async with self.database.transaction() as conn:
            await ensure_row(conn, member_preferences, user_id=user_id)
            await conn.execute(member_preferences.update().where(member_preferences.c.user_id == user_id)
                               .values(updated_at=utcnow(), **values))
        return await self.get(user_id)

    async def clear(self, user_id: int) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(member_preferences.delete().where(member_preferences.c.user_id == user_id))
