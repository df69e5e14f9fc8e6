"""The hash of the command payload last synced to Discord, per scope ("global" or a guild id)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.core.clock import utcnow
from bot.storage.database import Database, upsert
from bot.storage.tables import command_sync


class CommandSyncStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def synced_hash(self, scope: str) -> str | None:
        async with self._database.engine.connect() as connection:
            result = await connection.execute(
                sa.select(command_sync.c.payload_hash).where(command_sync.c.scope == scope))
            return result.scalar_one_or_none()

    async def remember(self, scope: str, payload_hash: str) -> None:
        """Upsert: processes starting together may both sync, and both record it."""
        values = {"scope": scope, "payload_hash": payload_hash, "synced_at": utcnow()}
        replace = upsert(self._database.dialect, command_sync, key=("scope",), update=("payload_hash", "synced_at"))
        async with self._database.transaction() as connection:
            await connection.execute(replace, values)
