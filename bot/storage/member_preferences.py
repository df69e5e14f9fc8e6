"""Every SQL statement about members' own defaults (`/prefer`): one row per member, across servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from bot.core.clock import utcnow
from bot.core.jobs.preferences import NO_PREFERENCES, MemberPreferences
from bot.storage.database import Database
from bot.storage.quota_settings import ensure_row
from bot.storage.tables import member_preferences


class PreferenceStore:
    """Members' defaults, answered from memory.

    `get` runs before a command is acknowledged, so a burst of commands must not queue on the
    database for it. The table is small (one row per member who used `/prefer`), so the store
    holds all of it: this process's own changes apply at once, another process's within `ttl`
    seconds (the next reload), and concurrent callers share one reload.
    """

    def __init__(self, database: Database, *, ttl: float = 60.0) -> None:
        self.database = database
        self._ttl = ttl
        self._rows: dict[int, MemberPreferences] = {}
        self._loaded_at: float | None = None
        self._reload: asyncio.Task[None] | None = None

    async def get(self, user_id: int) -> MemberPreferences:
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= self._ttl:
            if self._reload is None or self._reload.done():
                self._reload = asyncio.create_task(self._load_all())
            await asyncio.shield(self._reload)
        return self._rows.get(user_id, NO_PREFERENCES)

    async def _load_all(self) -> None:
        async with self.database.engine.connect() as conn:  # a read: no write lock
            rows = (await conn.execute(sa.select(member_preferences))).mappings().all()
        self._rows = {row["user_id"]: _preferences(row) for row in rows}
        self._loaded_at = time.monotonic()

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
            row = (await conn.execute(sa.select(member_preferences)
                                      .where(member_preferences.c.user_id == user_id))).mappings().one()
        self._rows[user_id] = found = _preferences(row)
        return found

    async def clear(self, user_id: int) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(member_preferences.delete().where(member_preferences.c.user_id == user_id))
        self._rows.pop(user_id, None)


def _preferences(row: Mapping[Any, Any]) -> MemberPreferences:
    watermark = row["watermark"]
    return MemberPreferences(size=row["size"], count=row["image_count"],
                             watermark=None if watermark is None else bool(watermark))
