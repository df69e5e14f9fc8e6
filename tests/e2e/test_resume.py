"""Jobs outlive the process: a restart resumes each job where it stopped, exactly once.

These run the real bot twice on one database, in this process: the first run stops with the
job in flight (its runner hands the job back, as on SIGTERM), the second resumes it. The crash
itself, with kill -9 at each stage, is in tests/processes/test_crash_resume.py.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from bot.storage.tables import job_results
from tests import harness
from tests.e2e.conftest import BotStarter
from tests.e2e.test_imagine import finished
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, posted_images


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    async def wait() -> None:
        # The condition is in the database, which has no event to wait on: look every 10 ms.
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def reply_texts(fake: StandardDiscord, interaction) -> list[str]:
    """Every text the deferred reply was given, in order (the member saw each)."""
    return [str((record.payload or {}).get("content")) for record in fake.requests
            if record.method == "PATCH" and record.path.endswith(f"{interaction.token}/messages/@original")]


async def the_job(bot):
    """The one unfinished job, once the command has stored it."""
    async def stored() -> bool:
        return len(await bot.jobs.unfinished()) == 1
    await until(stored, "the job to be stored")
    [job] = await bot.jobs.unfinished()
    return job


async def used(bot, fake: StandardDiscord) -> tuple[int, int]:
    await harness.idle(bot.jobs)  # the last charge commits a moment after the summary shows
    status = await bot.quota.status(fake.guild.id, fake.alice.id, [])
    return status.used, status.reserved


async def test_a_job_interrupted_mid_generation_is_generated_again_in_the_same_reply(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 0  # the relay is working on it when the bot stops
    async with boot() as first:
        interaction = await fake_discord.slash("imagine", {"prompt": "a lighthouse at dawn"})
        await asyncio.wait_for(relay.holding.wait(), 10)
        job = await the_job(first)
    relay.release.set()

    async with boot() as second:
        summary = await finished(interaction)
        settled = await harness.settled(second.jobs, job.id)
        charged = await used(second, fake_discord)
        metrics = second.metrics.render().decode()

    assert summary.content.startswith("✅")
    # The process that resumed it counts it, though another process took the command.
    assert 'seedream_jobs_total{kind="imagine",state="delivered"} 1.0' in metrics
    assert any("Resumed after a restart" in text for text in reply_texts(fake_discord, interaction))
    assert posted_images(fake_discord, job.id) == {0: 1}
    assert len(relay.requests) == 2 and settled is not None and settled.attempts == 2
    assert settled.state == "delivered"
    assert charged == (1, 0)


async def test_a_set_half_posted_before_a_restart_gets_only_the_rest(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 2
    async with boot() as first:
        interaction = await fake_discord.slash("imagine", {"prompt": "four seasons", "count": 4})
        job = await the_job(first)

        async def two_posted() -> bool:
            return sum(posted_images(fake_discord, job.id).values()) == 2 and len(
                (await first.jobs.get(job.id)).images) == 2
        await until(two_posted, "two images posted and recorded")
    relay.release.set()

    async with boot() as second:
        await finished(interaction)
        settled = await second.jobs.get(job.id)
        charged = await used(second, fake_discord)

    assert posted_images(fake_discord, job.id) == {0: 1, 1: 1, 2: 1, 3: 1}
    asked = [request.body["sequential_image_generation_options"]["max_images"] for request in relay.requests]
    assert asked == [4, 2]  # the second call asks only for what was missing
    assert sorted(image["index"] for image in settled.images) == [0, 1, 2, 3]
    assert charged == (4, 0)


async def test_images_the_relay_returned_before_a_restart_are_posted_without_a_second_call(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    # Discord is down when it arrives (a one-image job's one post is the edit of its reply).
    fake_discord.fail_next("PATCH", r"^/webhooks/.*/@original$", 500, times=50)
    async with boot() as first:
        interaction = await fake_discord.slash("imagine", {"prompt": "a red kite"})
        job = await the_job(first)

        async def kept() -> bool:
            return len(await first.jobs.results(job.id)) == 1
        await until(kept, "the image to be kept")
    fake_discord.faults.clear()

    async with boot() as second:
        await finished(interaction)
        charged = await used(second, fake_discord)
        leftover = await second.jobs.results(job.id)
        await second.renew_leases()  # a round of upkeep frees the ended job's kept image
        async with second.database.engine.connect() as conn:
            kept_rows = (await conn.execute(sa.select(sa.func.count()).select_from(job_results))).scalar_one()

    assert len(relay.requests) == 1
    assert posted_images(fake_discord, job.id) == {0: 1}
    assert charged == (1, 0) and leftover == [] and kept_rows == 0


async def test_a_channel_post_repeated_after_a_lost_answer_is_deduplicated_by_its_nonce(world) -> None:
    from datetime import timedelta

    fake = world.discord
    fake.fail_next("POST", r"^/channels/\d+/messages$", 500, times=1, after_effect=True)
    await world.imagine(prompt="an old token", age=timedelta(minutes=14, seconds=30))  # goes to the channel
    message = await fake.wait_for_message(fake.general, lambda m: bool(m.files))
    [job_id] = {m.embeds[0]["footer"]["text"].removeprefix("Job ") for m in [message]}
    await fake.wait_for_message(fake.general, lambda m: m.content.startswith(f"<@{fake.alice.id}> ✅"))

    assert posted_images(fake, job_id) == {0: 1}


async def test_a_job_out_of_attempts_is_failed_refunded_and_its_reply_says_why(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 0
    async with boot(job_max_attempts=1) as first:
        interaction = await fake_discord.slash("imagine", {"prompt": "a storm"})
        await asyncio.wait_for(relay.holding.wait(), 10)
        job = await the_job(first)

    async with boot(job_max_attempts=1) as second:
        summary = await finished(interaction)
        settled = await harness.settled(second.jobs, job.id)
        charged = await used(second, fake_discord)
    relay.release.set()

    assert summary.content.startswith("❌") and "interrupted" in summary.content
    assert settled is not None and settled.state == "failed" and len(relay.requests) == 1
    assert charged == (0, 0)


async def test_start_leaves_alone_the_jobs_a_live_process_holds_the_lease_of(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 0
    async with boot(instance_name="elsewhere") as other:
        await fake_discord.slash("imagine", {"prompt": "busy elsewhere", "count": 2})
        await asyncio.wait_for(relay.holding.wait(), 10)
        job = await the_job(other)
        async with boot(instance_name="here") as bot:
            await bot.wait_until_ready()
            await bot.renew_leases()  # one round of lease upkeep: the other process's lease is live
            kept = await bot.jobs.get(job.id)
            status = await bot.quota.status(fake_discord.guild.id, fake_discord.alice.id, [])
        relay.release.set()

    assert kept is not None and kept.state == "running" and kept.lease_owner == "elsewhere"
    assert status.reserved == 2


async def test_a_follow_up_whose_answer_was_lost_is_not_posted_again(world) -> None:
    fake = world.discord
    fake.fail_next("POST", r"^/webhooks/\d+/[^/]+$", 500, times=1, after_effect=True)
    interaction = await world.imagine(prompt="a paper boat")
    await finished(interaction, timeout=30)
    [job_id] = {m.embeds[0]["footer"]["text"].removeprefix("Job ") for m in interaction.messages if m.files}

    assert posted_images(fake, job_id) == {0: 1}  # found in the channel by the runner's retry
    assert await used(world.bot, fake) == (1, 0)


async def test_a_set_cut_short_by_restarts_says_why_in_its_summary(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay) -> None:
    relay.hold_after = 1
    async with boot(job_max_attempts=1) as first:
        interaction = await fake_discord.slash("imagine", {"prompt": "three bells", "count": 3})
        job = await the_job(first)
        await asyncio.wait_for(relay.holding.wait(), 10)

        async def one_posted() -> bool:
            return len((await first.jobs.get(job.id)).images) == 1
        await until(one_posted, "the first image posted and recorded")

    async with boot(job_max_attempts=1) as second:
        summary = await finished(interaction)
        charged = await used(second, fake_discord)
    relay.release.set()

    assert summary.content.startswith("✅") and "interrupted by restarts" in summary.content
    assert posted_images(fake_discord, job.id) == {0: 1}
    assert charged == (1, 0)
