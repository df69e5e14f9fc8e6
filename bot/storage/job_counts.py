"""How many jobs wait in the database (the seedream_queue_depth gauge)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.database import Database
from bot.storage.tables import jobs


async def queued_jobs(database: Database) -> int:
    """Jobs stored but not started yet, of every process sharing this database."""
    async with database.engine.connect() as connection:
        result = await connection.execute(
            sa.select(sa.func.count()).select_from(jobs).where(jobs.c.state == "queued"))
        return int(result.scalar_one())
