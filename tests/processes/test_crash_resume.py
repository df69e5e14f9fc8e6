"""kill -9 at each stage of a job: after the restart every job is delivered exactly once, the
ledger charges exactly the images delivered, and the member's reply tells one story.

The bot is a real `python -m bot` subprocess (tests/procs.py) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.core.quota import QuotaService
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobStore
from tests.fakes.discord_state import FakeInteraction
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, posted_images
from tests.procs import BotProcess, fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


class Ledger:
    """The shared database, read from the test process."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.jobs = JobStore(self.database)
        self.quota = QuotaService(self.database, global_default_limit=25)

    async def unfinished(self, count: int) -> list[JobRecord]:
        async def stored() -> list[JobRecord] | None:
            jobs = await self.jobs.unfinished()
            return jobs if len(jobs) >= count else None
        return await poll(stored, f"{count} job(s) stored")

    async def used(self, fake: StandardDiscord) -> tuple[int, int]:
        """(used, reserved) once every job has ended in the database (Discord shows a job's last
        message a moment before the transaction that charges it commits)."""
        async def ended() -> bool:
            return not await self.jobs.unfinished()
        await poll(ended, "every job to end in the database")
        status = await self.quota.status(fake.guild.id, fake.alice.id, [])
        return status.used, status.reserved


async def poll(check: Callable[[], Awaitable[object]], what: str, timeout: float = 30.0) -> object:
    """The database has no event to wait on: look every 20 ms."""
    async def wait() -> object:
        while not (value := await check()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return value
    try:
        return await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger(database_url)
    yield ledger
    await ledger.database.close()


@pytest.fixture
def bot_process(fake_discord: StandardDiscord, relay: FakeRelay, database_url: str, tmp_path):
    def make(**env: str) -> BotProcess:
        return BotProcess(fake_discord, relay, database_url=database_url, workdir=tmp_path,
                          env={"INSTANCE_NAME": "crash-test", **env})
    return make


async def summary(interaction: FakeInteraction, timeout: float = 60.0) -> str:
    """The job's final summary on the member's deferred reply."""
    def done() -> str | None:
        original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
        return original.content if original and original.content.startswith(("✅", "❌")) else None
    return await interaction.waiter.wait_for(done, timeout, what="the job's final summary")


async def test_kill_while_one_job_generates_and_another_waits_in_the_queue(
        fake_discord, relay, ledger, bot_process) -> None:
    relay.hold_after = 0
    async with bot_process(RELAY_CONCURRENCY="1") as bot:
        generating = await fake_discord.slash("imagine", {"prompt": "first, at the relay"})
        waiting = await fake_discord.slash("imagine", {"prompt": "second, in the queue"})
        jobs = await ledger.unfinished(2)
        await asyncio.wait_for(relay.holding.wait(), 30)
        await bot.kill()
        relay.release.set()
        await bot.start()
        texts = [await summary(generating), await summary(waiting)]
        used = await ledger.used(fake_discord)

    assert all(text.startswith("✅") for text in texts)
    for job in jobs:
        assert posted_images(fake_discord, job.id) == {0: 1}
    # Whichever reached the relay first was generating when the bot died: it is generated again,
    # the one still queued only once.
    calls = Counter(request.body["prompt"] for request in relay.requests)
    assert sorted(calls.values()) == [1, 2] and set(calls) == {"first, at the relay", "second, in the queue"}
    assert used == (2, 0)


async def test_kill_after_the_relay_answered_but_before_the_image_was_posted(
        fake_discord, relay, ledger, bot_process) -> None:
    # A one-image job's image goes out in the one edit of its deferred reply, with the summary.
    upload = fake_discord.hold("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$")
    async with bot_process() as bot:
        interaction = await fake_discord.slash("imagine", {"prompt": "a lantern"})
        [job] = await ledger.unfinished(1)
        await fake_discord.wait_for(lambda: upload.held, 30, what="the upload to be held")
        await bot.kill()
        upload.release(process=False)  # it never landed
        await bot.start()
        text = await summary(interaction)
        used = await ledger.used(fake_discord)  # while the bot lives: it records just after the summary

    assert text.startswith("✅")
    assert len(relay.requests) == 1  # posted from what was kept, not generated again
    assert posted_images(fake_discord, job.id) == {0: 1}
    assert used == (1, 0)


async def test_kill_after_the_post_landed_but_before_the_bot_heard_of_it(
        fake_discord, relay, ledger, bot_process) -> None:
    upload = fake_discord.hold("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$")
    async with bot_process() as bot:
        interaction = await fake_discord.slash("imagine", {"prompt": "a compass"})
        [job] = await ledger.unfinished(1)
        await fake_discord.wait_for(lambda: upload.held, 30, what="the upload to be held")
        await bot.kill()
        upload.release()  # it landed; the bot died before the answer reached it
        await fake_discord.wait_for(lambda: posted_images(fake_discord, job.id) or None, 10, what="the post to land")
        await bot.start()
        text = await summary(interaction)
        used = await ledger.used(fake_discord)  # while the bot lives: it records just after the summary

    assert text.startswith("✅")
    assert len(relay.requests) == 1
    assert posted_images(fake_discord, job.id) == {0: 1}  # found in the channel, not posted again
    assert used == (1, 0)


async def test_kill_after_two_of_four_set_images_were_posted(fake_discord, relay, ledger, bot_process) -> None:
    relay.hold_after = 2
    async with bot_process() as bot:
        interaction = await fake_discord.slash("imagine", {"prompt": "four seasons", "count": 4})
        [job] = await ledger.unfinished(1)
        await fake_discord.wait_for(lambda: sum(posted_images(fake_discord, job.id).values()) == 2 or None, 30,
                                    what="two images posted")
        await asyncio.wait_for(relay.holding.wait(), 30)
        await bot.kill()
        relay.release.set()
        await bot.start()
        text = await summary(interaction)
        used = await ledger.used(fake_discord)  # while the bot lives: it records just after the summary

    assert text.startswith("✅")
    assert posted_images(fake_discord, job.id) == {0: 1, 1: 1, 2: 1, 3: 1}
    asked = [request.body["sequential_image_generation_options"]["max_images"] for request in relay.requests]
    assert asked == [4, 2]  # the restart asked only for the two still missing
    assert used == (4, 0)


async def test_kill_during_settlement(fake_discord, relay, ledger, bot_process) -> None:
    # A set's images go out as they arrive; the summary edit of the reply comes once the job is settled.
    relay.hold_after = 1
    reply = fake_discord.hold("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$", content="^✅")
    async with bot_process() as bot:
        interaction = await fake_discord.slash("imagine", {"prompt": "a harbour", "count": 2})
        [job] = await ledger.unfinished(1)
        await fake_discord.wait_for(lambda: posted_images(fake_discord, job.id) or None, 30,
                                    what="the first image posted")
        relay.release.set()
        await fake_discord.wait_for(lambda: reply.held, 30, what="the summary edit to be held")
        await bot.kill()
        reply.release(process=False)
        await bot.start()
        text = await summary(interaction)
        used = await ledger.used(fake_discord)  # while the bot lives: it records just after the summary

    assert text.startswith("✅")  # the reply is not left "thinking…"
    assert len(relay.requests) == 1
    assert posted_images(fake_discord, job.id) == {0: 1, 1: 1}
    assert used == (2, 0)


async def test_sigterm_past_the_grace_period_hands_the_job_back_for_the_next_start(
        fake_discord, relay, ledger, bot_process) -> None:
    relay.hold_after = 0
    async with bot_process(SHUTDOWN_GRACE_SECONDS="0") as bot:
        interaction = await fake_discord.slash("imagine", {"prompt": "a slow sunrise"})
        [job] = await ledger.unfinished(1)
        await asyncio.wait_for(relay.holding.wait(), 30)
        code = await bot.terminate()
        handed_back = await ledger.jobs.get(job.id)
        relay.release.set()
        await bot.start()
        text = await summary(interaction)
        used = await ledger.used(fake_discord)  # while the bot lives: it records just after the summary
        log = bot.log()

    assert code == 0 and "handed 1 unfinished job(s) back to the queue" in log
    assert handed_back is not None and handed_back.state == "queued" and handed_back.lease_owner is None
    assert text.startswith("✅")
    assert posted_images(fake_discord, job.id) == {0: 1}
    assert used == (1, 0)
