"""Does the database answer? (/healthz and the start-up check)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.database import Database


async def database_answers(database: Database) -> None:
    """Run `SELECT 1`; raises whatever the driver raises when the database cannot answer."""
    async with database.engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))
