"""Shard processes: each `python -m bot` connects its slice of the gateway and answers its guilds."""

from __future__ import annotations

import signal
import socket

import pytest
import sqlalchemy as sa

from bot.storage.database import Database
from bot.storage.jobs import JobStore
from bot.storage.tables import jobs as jobs_table
from tests.fakes.discord_state import Channel, FakeInteraction, Guild
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, settled
from tests.procs import BotProcess, fresh_postgres_database, started_together


def guild_on_shard(fake: StandardDiscord, shard: int, count: int) -> tuple[Guild, Channel]:
    """A guild that gateway shard `shard` of `count` owns, with #art and alice as a member."""
    guild = fake.add_guild(f"Shard {shard} guild", owner=fake.owner, shard=(shard, count))
    channel = fake.add_channel(guild, "art")
    fake.add_member(guild, fake.alice)
    return guild, channel


async def finished(interaction: FakeInteraction, timeout: float = 30.0) -> str:
    """The job's final summary on the progress message."""
    def done() -> str | None:
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        return original.content if original and original.content.startswith(("✅", "❌")) else None

    return await interaction.waiter.wait_for(done, timeout, what="the job's final summary")


def job_id_of(interaction: FakeInteraction) -> str:
    message = next(m for m in interaction.messages if m.files)
    return str(message.embeds[0]["footer"]["text"]).removeprefix("Job ")


async def lease_owners(url: str) -> list[str | None]:
    """The lease owner of every job in the shared database."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return list((await connection.execute(sa.select(jobs_table.c.lease_owner))).scalars())
    finally:
        await database.close()


def interactions_heard(process: BotProcess) -> set[int]:
    return {int(data["id"]) for session in process.sessions for event, data in session.dispatched
            if event == "INTERACTION_CREATE"}


def guilds_heard(process: BotProcess) -> set[int]:
    return {int(data["id"]) for session in process.sessions for event, data in session.dispatched
            if event == "GUILD_CREATE"}


@pytest.mark.postgres
async def test_two_shard_processes_on_one_postgresql_each_answer_the_guilds_of_their_shard(
        fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    (first_guild, first_channel), (second_guild, second_channel) = (
        guild_on_shard(fake_discord, 0, 2), guild_on_shard(fake_discord, 1, 2))
    async with fresh_postgres_database() as url:
        shard0 = BotProcess(fake_discord, relay, database_url=url, env={"SHARD_COUNT": "2", "SHARD_IDS": "0"})
        shard1 = BotProcess(fake_discord, relay, database_url=url, env={"SHARD_COUNT": "2", "SHARD_IDS": "1"})
        # Started together, as `docker compose up` does: one migrates, the other waits its turn.
        async with started_together(shard0, shard1):
            relay.hold_after = 0
            on_first = await fake_discord.slash("imagine", {"prompt": "a lighthouse"}, channel=first_channel)
            on_second = await fake_discord.slash("imagine", {"prompt": "a harbour"}, channel=second_channel)
            await fake_discord.wait_for(lambda: len(relay.requests) == 2, 30, what="both jobs at the relay")
            owners = await lease_owners(url)
            relay.release.set()
            summaries = [await finished(on_first), await finished(on_second)]

            database = Database(url)
            try:
                jobs = JobStore(database, owner="the-test")
                # The end of each job commits a moment after its summary shows.
                first_job, second_job = (await settled(jobs, job_id_of(on_first)),
                                         await settled(jobs, job_id_of(on_second)))
            finally:
                await database.close()

    assert all(summary.startswith("✅") for summary in summaries)
    assert [s.shard for s in shard0.sessions] == [(0, 2)] and [s.shard for s in shard1.sessions] == [(1, 2)]
    assert first_guild.id in guilds_heard(shard0) and first_guild.id not in guilds_heard(shard1)
    assert second_guild.id in guilds_heard(shard1) and second_guild.id not in guilds_heard(shard0)
    assert interactions_heard(shard0) == {on_first.id} and interactions_heard(shard1) == {on_second.id}
    assert first_job is not None and first_job.state == "delivered"
    assert second_job is not None and second_job.state == "delivered"
    host = socket.gethostname()  # each process leases under its own default name: host + its shards
    assert len(owners) == 2 and set(owners) <= {f"{host}-shards-0", f"{host}-shards-1"}


async def test_a_killed_process_restarts_and_answers_again_and_sigterm_ends_it_cleanly(
        fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    async with BotProcess(fake_discord, relay, env={"SHARD_COUNT": "1"}) as proc:
        before = await finished(await fake_discord.slash("imagine", {"prompt": "before the crash"}))
        killed = await proc.kill()
        await proc.start()
        after = await finished(await fake_discord.slash("imagine", {"prompt": "after the restart"}))
        stopped = await proc.terminate()
        log = proc.log()

    assert before.startswith("✅") and after.startswith("✅")
    assert killed == -9 and stopped == 0 and proc.starts == 2
    assert "SIGTERM" in log and "Traceback" not in log
    assert relay.api_key not in log and fake_discord.token not in log


async def test_a_process_that_cannot_start_raises_with_its_log(fake_discord: StandardDiscord,
                                                               relay: FakeRelay) -> None:
    from tests.procs import BotExited

    proc = BotProcess(fake_discord, relay, env={"SHARD_COUNT": "2", "SHARD_IDS": "0-2"})
    with pytest.raises(BotExited, match="SHARD_IDS is invalid"):
        async with proc:
            pass


async def test_sigterm_lets_the_running_job_finish_before_the_process_exits(
        fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 0
    async with BotProcess(fake_discord, relay) as proc:
        interaction = await fake_discord.slash("imagine", {"prompt": "finish me"})
        await fake_discord.wait_for(lambda: relay.requests, 30, what="the job at the relay")
        proc.send_signal(signal.SIGTERM)
        await fake_discord.wait_for(lambda: "SIGTERM" in proc.log(), 30, what="the bot to log the SIGTERM")
        assert proc.running
        relay.release.set()
        code = await proc.wait(30)
        summary = await finished(interaction)

    assert code == 0 and summary.startswith("✅")
    assert [m for m in interaction.messages if m.files]
