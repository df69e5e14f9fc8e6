"""A crash never strands a job: on start, unfinished jobs are settled, refunded and their requesters told."""

from __future__ import annotations

from bot.config import instance_name
from bot.core.jobs.spec import StoredRequest
from bot.core.quota import QuotaService
from bot.storage.database import Database
from bot.storage.jobs import JobStore


async def test_job_left_running_by_a_crash_is_refunded_and_its_requester_told(boot, fake_discord, database_url):
    async with boot() as first:
        owner = instance_name(first.settings)  # the crashed run: the same instance as the next start
    database = Database(database_url)
    jobs, quota = JobStore(database, owner=owner), QuotaService(database, global_default_limit=25)
    job = await jobs.create(kind="imagine", requester_id=fake_discord.alice.id, guild_id=fake_discord.guild.id,
                            channel_id=fake_discord.general.id,
                            request=StoredRequest(prompt="lost", size="2K", count=4))
    await quota.reserve(guild_id=fake_discord.guild.id, user_id=fake_discord.alice.id, role_ids=[],
                        job_id=job.id, images=4)
    await jobs.mark_running(job.id)
    await database.close()

    async with boot() as bot:
        notice = await fake_discord.wait_for_message(fake_discord.general, lambda m: job.id in m.content)
        settled = await bot.jobs.get(job.id)
        status = await bot.quota.status(fake_discord.guild.id, fake_discord.alice.id, [])

    assert notice.content.startswith(f"<@{fake_discord.alice.id}>")
    assert "nothing was charged" in notice.content
    assert settled is not None and settled.state == "failed"
    assert status.used == 0 and status.reserved == 0


async def test_start_leaves_alone_the_jobs_a_live_process_holds_the_lease_of(boot, fake_discord, database_url):
    async with boot():
        pass  # first run creates the schema
    database = Database(database_url)
    jobs, quota = JobStore(database, owner="other-process"), QuotaService(database, global_default_limit=25)
    job = await jobs.create(kind="imagine", requester_id=fake_discord.alice.id, guild_id=fake_discord.guild.id,
                            channel_id=fake_discord.general.id,
                            request=StoredRequest(prompt="busy elsewhere", size="2K", count=2))
    await quota.reserve(guild_id=fake_discord.guild.id, user_id=fake_discord.alice.id, role_ids=[],
                        job_id=job.id, images=2)
    await jobs.mark_running(job.id)

    async with boot() as bot:
        await bot.wait_until_ready()
        await bot.renew_leases()  # one round of lease upkeep: the other process's lease is live
        kept = await bot.jobs.get(job.id)
        status = await bot.quota.status(fake_discord.guild.id, fake_discord.alice.id, [])
    await database.close()

    assert kept is not None and kept.state == "running" and kept.lease_owner == "other-process"
    assert status.reserved == 2
