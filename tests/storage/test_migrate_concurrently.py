"""Processes that start together on one fresh PostgreSQL migrate it once, none of them failing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.storage.database import Database
from tests.procs import REPO, fresh_postgres_database

MIGRATE = "import asyncio, sys; from bot.storage.database import Database; asyncio.run(Database(sys.argv[1]).migrate())"


async def migrate_in_a_process(url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MIGRATE, url, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return await process.wait(), output.decode(errors="replace")


async def three_migrate_at_once(url: str) -> None:
    """Three processes migrate `url` at once: all succeed and the schema has one version."""
    outcomes = await asyncio.gather(*(migrate_in_a_process(url) for _ in range(3)))
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            versions = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await database.close()
    assert [code for code, _ in outcomes] == [0, 0, 0], "\n".join(output for _, output in outcomes)
    assert len(versions) == 1


@pytest.mark.postgres
async def test_three_processes_migrating_one_fresh_postgresql_at_once_all_succeed() -> None:
    async with fresh_postgres_database() as url:
        await three_migrate_at_once(url)


async def test_three_processes_migrating_one_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    await three_migrate_at_once(f"sqlite:///{tmp_path / 'shared.db'}")
