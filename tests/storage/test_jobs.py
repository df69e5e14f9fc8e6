"""JobStore: the job row a result's buttons and crash recovery rely on."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.jobs.spec import StoredRequest
from bot.storage.database import Database
from bot.storage.jobs import DuplicateJob, JobState, JobStore, UnknownJob


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def create(store: JobStore, **overrides: object):
    values: dict = {
        "kind": "imagine",
        "requester_id": 111,
        "guild_id": 222,
        "channel_id": 333,
        "request": StoredRequest(prompt="a red fox", size="2K", count=2),
    }
    values.update(overrides)
    return await store.create(**values)


async def test_created_job_is_queued_with_an_eight_char_base32_id(database: Database) -> None:
    store = JobStore(database)
    job = await create(store, parent_job_id="abcdefgh", source_message_id=444)

    assert re.fullmatch(r"[a-z2-7]{8}", job.id)
    stored = await store.get(job.id)
    assert stored == job
    assert stored.state is JobState.QUEUED
    assert stored.request == StoredRequest(prompt="a red fox", size="2K", count=2)
    assert stored.parent_job_id == "abcdefgh"
    assert stored.source_message_id == 444
    assert stored.result_message_ids == [] and stored.images == []


async def test_unknown_job_id_reads_as_none(database: Database) -> None:
    assert await JobStore(database).get("zzzzzzzz") is None


async def test_snowflakes_and_times_round_trip_exactly(database: Database) -> None:
    clock = Clock()
    store = JobStore(database, clock=clock)
    big = 1_234_567_890_123_456_789
    job = await create(store, requester_id=big, guild_id=big - 1, channel_id=big - 2)

    stored = await store.get(job.id)
    assert (stored.requester_id, stored.guild_id, stored.channel_id) == (big, big - 1, big - 2)
    assert stored.created_at == clock.now
    assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == timedelta(0)


async def test_job_runs_then_delivers_with_timestamps(database: Database) -> None:
    clock = Clock()
    store = JobStore(database, clock=clock)
    job = await create(store)

    clock.now += timedelta(seconds=5)
    assert await store.mark_running(job.id) is True
    clock.now += timedelta(seconds=30)
    assert await store.finish(job.id, JobState.DELIVERED) is True

    stored = await store.get(job.id)
    assert stored.state is JobState.DELIVERED
    assert stored.started_at == job.created_at + timedelta(seconds=5)
    assert stored.finished_at == job.created_at + timedelta(seconds=35)
    assert stored.error is None


async def test_failed_job_keeps_its_error_and_a_second_finish_changes_nothing(database: Database) -> None:
    store = JobStore(database)
    job = await create(store)
    await store.mark_running(job.id)

    assert await store.finish(job.id, JobState.FAILED, "relay said: content blocked") is True
    assert await store.finish(job.id, JobState.DELIVERED) is False
    assert await store.mark_running(job.id) is False

    stored = await store.get(job.id)
    assert stored.state is JobState.FAILED
    assert stored.error == "relay said: content blocked"


async def test_finish_refuses_a_state_that_is_not_final(database: Database) -> None:
    store = JobStore(database)
    job = await create(store)
    with pytest.raises(ValueError, match="final state"):
        await store.finish(job.id, JobState.RUNNING)


async def test_changing_an_unknown_job_raises(database: Database) -> None:
    store = JobStore(database)
    with pytest.raises(UnknownJob):
        await store.mark_running("zzzzzzzz")
    with pytest.raises(UnknownJob):
        await store.finish("zzzzzzzz", JobState.FAILED)


async def test_finishing_records_the_posted_messages_and_images(database: Database) -> None:
    store = JobStore(database)
    job = await create(store)

    images = [{"index": 0, "size": "2048x2048"}, {"index": 1}, {"index": 2}]
    assert await store.finish(job.id, JobState.DELIVERED, message_ids=[10, 11], images=images)

    stored = await store.get(job.id)
    assert stored.result_message_ids == [10, 11]
    assert stored.images == images


async def test_unfinished_lists_queued_and_running_jobs_oldest_first(database: Database) -> None:
    clock = Clock()
    store = JobStore(database, clock=clock)
    queued = await create(store)
    clock.now += timedelta(seconds=1)
    running = await create(store)
    await store.mark_running(running.id)
    clock.now += timedelta(seconds=1)
    delivered = await create(store)
    await store.finish(delivered.id, JobState.DELIVERED)
    failed = await create(store)
    await store.finish(failed.id, JobState.FAILED, "boom")

    assert [job.id for job in await store.unfinished()] == [queued.id, running.id]


async def test_active_jobs_are_per_requester_and_per_guild(database: Database) -> None:
    store = JobStore(database)
    mine = await create(store, requester_id=1, guild_id=50)
    await create(store, requester_id=1, guild_id=60)
    await create(store, requester_id=2, guild_id=50)
    in_dm = await create(store, requester_id=1, guild_id=None, channel_id=None)
    done = await create(store, requester_id=1, guild_id=50)
    await store.finish(done.id, JobState.DELIVERED)

    assert [job.id for job in await store.active_for_user(1, 50)] == [mine.id]
    assert [job.id for job in await store.active_for_user(1, None)] == [in_dm.id]


async def test_a_repeated_dedupe_key_names_the_existing_job(database: Database) -> None:
    store = JobStore(database)
    first = await create(store, dedupe_key="interaction:987")

    with pytest.raises(DuplicateJob) as raised:
        await create(store, dedupe_key="interaction:987")

    assert raised.value.existing_job_id == first.id
    assert await create(store, dedupe_key="interaction:988")  # another key is fine
    assert await create(store) and await create(store)  # no key: no dedupe


async def test_a_finished_job_releases_its_dedupe_key_for_the_next_click(database: Database) -> None:
    store = JobStore(database)
    first = await create(store, dedupe_key="reroll:555:111")
    await store.finish(first.id, JobState.DELIVERED)

    second = await create(store, dedupe_key="reroll:555:111")

    assert second.id != first.id
    assert (await store.get(first.id)).dedupe_key is None
    with pytest.raises(DuplicateJob):  # held again while the second job is active
        await create(store, dedupe_key="reroll:555:111")


async def test_ten_concurrent_creates_with_one_dedupe_key_make_exactly_one_job(database: Database) -> None:
    store = JobStore(database)

    outcomes = await asyncio.gather(
        *(create(store, dedupe_key="button:reroll:abc") for _ in range(10)), return_exceptions=True
    )

    created = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    duplicates = [outcome for outcome in outcomes if isinstance(outcome, DuplicateJob)]
    assert len(created) == 1 and len(duplicates) == 9
    assert {duplicate.existing_job_id for duplicate in duplicates} == {created[0].id}
    assert [job.id for job in await store.unfinished()] == [created[0].id]


async def test_abandoned_jobs_are_those_whose_lease_ran_out_or_this_instance_owned(database: Database) -> None:
    clock = Clock()
    mine = JobStore(database, owner="a", lease=timedelta(seconds=30), clock=clock)
    theirs = JobStore(database, owner="b", lease=timedelta(seconds=30), clock=clock)
    own_job = await create(mine)
    their_job = await create(theirs)
    await theirs.mark_running(their_job.id)

    assert [job.id for job in await mine.abandoned(own=False)] == []
    assert [job.id for job in await mine.abandoned(own=True)] == [own_job.id]

    clock.now += timedelta(seconds=20)
    assert await theirs.heartbeat() == 1  # b is alive: its lease moves on
    clock.now += timedelta(seconds=20)
    assert [job.id for job in await mine.abandoned(own=False)] == [own_job.id]  # a renewed nothing

    clock.now += timedelta(seconds=31)
    assert {job.id for job in await mine.abandoned(own=False)} == {own_job.id, their_job.id}
    stored = await theirs.get(their_job.id)
    assert stored is not None and stored.attempts == 1 and stored.lease_owner == "b"

    await theirs.finish(their_job.id, JobState.DELIVERED)
    finished = await theirs.get(their_job.id)
    assert finished is not None and finished.lease_owner is None and finished.lease_expires_at is None
