"""bot/storage/tables.py must describe the schema the migrations create."""

from __future__ import annotations

import sqlalchemy as sa

from bot.storage.database import Database
from bot.storage.tables import metadata


async def test_table_definitions_match_the_migrated_schema(database: Database) -> None:
    def reflect(connection: sa.Connection) -> dict[str, dict[str, bool]]:
        inspector = sa.inspect(connection)
        return {
            table: {column["name"]: column["nullable"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }

    async with database.engine.connect() as connection:
        migrated = await connection.run_sync(reflect)

    declared = {
        table.name: {column.name: bool(column.nullable) for column in table.columns}
        for table in metadata.sorted_tables
    }
    assert declared == migrated
