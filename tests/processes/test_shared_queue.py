"""Two shard processes on one PostgreSQL share one queue: one relay limit, and either finishes
the other's jobs when it dies."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from bot.storage.database import Database
from bot.storage.tables import jobs as jobs_table
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord
from tests.processes.test_shard_processes import finished, guild_on_shard
from tests.procs import BotProcess, fresh_postgres_database, started_together

pytestmark = pytest.mark.postgres


def shard_process(fake: StandardDiscord, relay: FakeRelay, url: str, shard: int, **env: str) -> BotProcess:
    return BotProcess(fake, relay, database_url=url,
                      env={"SHARD_COUNT": "2", "SHARD_IDS": str(shard), "INSTANCE_NAME": f"shard-{shard}", **env})


async def lease_owner(url: str) -> str | None:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            owners = (await connection.execute(
                sa.select(jobs_table.c.lease_owner).where(jobs_table.c.state == "running"))).scalars().all()
    finally:
        await database.close()
    return owners[0] if owners else None


async def test_relay_calls_in_flight_across_both_processes_never_exceed_relay_concurrency(
        fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    (_, first_channel), (_, second_channel) = guild_on_shard(fake_discord, 0, 2), guild_on_shard(fake_discord, 1, 2)
    members = [fake_discord.add_user(f"member{n}") for n in range(6)]
    for member in members:
        for guild in fake_discord.guilds.values():
            fake_discord.add_member(guild, member)
    relay.latency = 0.3
    async with fresh_postgres_database() as url:
        processes = [shard_process(fake_discord, relay, url, shard, RELAY_CONCURRENCY="2") for shard in (0, 1)]
        async with started_together(*processes):
            asked = [await fake_discord.slash("imagine", {"prompt": f"job {n}"}, user=member,
                                              channel=first_channel if n % 2 else second_channel)
                     for n, member in enumerate(members * 2)]
            summaries = await asyncio.gather(*(finished(interaction, timeout=90) for interaction in asked))

    assert all(summary.startswith("✅") for summary in summaries)
    assert len(relay.requests) == 12
    assert relay.peak_in_flight == 2  # the limit is shared: each process alone would allow 2


async def test_a_process_killed_mid_job_has_its_job_finished_by_the_other(
        fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    guild_on_shard(fake_discord, 0, 2)
    _, second_channel = guild_on_shard(fake_discord, 1, 2)
    relay.hold_after = 0
    async with fresh_postgres_database() as url:
        processes = {f"shard-{shard}": shard_process(fake_discord, relay, url, shard, JOB_LEASE_SECONDS="3")
                     for shard in (0, 1)}
        async with started_together(*processes.values()):
            interaction = await fake_discord.slash("imagine", {"prompt": "outlive me"}, channel=second_channel)
            await asyncio.wait_for(relay.holding.wait(), 30)
            owner = await lease_owner(url)
            assert owner in processes
            await processes[owner].kill()
            relay.release.set()
            summary = await finished(interaction, timeout=60)  # the survivor, once the lease ran out
            survivor = next(name for name in processes if name != owner)
            survivor_log = processes[survivor].log()

    assert summary.startswith("✅")
    assert len([m for m in interaction.messages if m.files]) == 1
    assert len(relay.requests) == 2
    assert "queued again 1 job(s)" in survivor_log
