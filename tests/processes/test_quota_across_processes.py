"""Quota races across processes: 50 reservations at a limit of 10, from two real processes
sharing one PostgreSQL, grant exactly 10."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.core.quota import QuotaService
from bot.storage.database import Database
from tests.procs import REPO, fresh_postgres_database

pytestmark = pytest.mark.postgres

GUILD, USER = 1_000_000_000_000_000_001, 2_000_000_000_000_000_002

# Each process fires its 25 reservations at once and prints how many were granted.
RESERVE = f"""
import asyncio, sys
from bot.core.quota import QuotaError, QuotaService
from bot.storage.database import Database

async def main(url, prefix):
    database = Database(url)
    quota = QuotaService(database, global_default_limit=10)
    async def one(n):
        try:
            await quota.reserve(guild_id={GUILD}, user_id={USER}, role_ids=[], job_id=f"{{prefix}}{{n:06d}}", images=1)
            return 1
        except QuotaError:
            return 0
    granted = sum(await asyncio.gather(*(one(n) for n in range(25))))
    await database.close()
    print(granted)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_fifty_reservations_from_two_processes_against_a_limit_of_ten_grant_exactly_ten() -> None:
    async with fresh_postgres_database() as url:
        database = Database(url)
        await database.migrate()
        await database.close()
        processes = [await asyncio.create_subprocess_exec(
            sys.executable, "-c", RESERVE, url, prefix, cwd=REPO, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE) for prefix in ("aa", "bb")]
        outputs = [await asyncio.wait_for(process.communicate(), 60) for process in processes]
        database = Database(url)
        status = await QuotaService(database, global_default_limit=10).status(GUILD, USER, [])
        await database.close()

    assert all(process.returncode == 0 for process in processes), [err.decode() for _, err in outputs]
    granted = [int(out.decode().strip()) for out, _ in outputs]
    assert sum(granted) == 10
    assert status.reserved == 10 and status.remaining == 0
