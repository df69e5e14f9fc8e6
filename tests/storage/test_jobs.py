"""JobStore: the job row a result's buttons and crash recovery rely on."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.core.jobs.spec import StoredRequest
from bot.core.relay.models import GeneratedImage
from bot.storage.database import Database
from bot.storage.jobs import CLAIM_LOCK, DuplicateJob, JobState, JobStore, UnknownJob
from bot.storage.tables import job_results


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


async def claim(store: JobStore, *, capacity: int = 10, relay_slots: int = 10, per_user: int = 10) -> list[str]:
    return [job.id for job in (await store.claim(capacity=capacity, relay_slots=relay_slots, per_user=per_user)).jobs]


async def post(store: JobStore, job_id: str, message_id: int, indices: list[int], kind: str = "result") -> None:
    async with store.transaction() as conn:
        await store.record_posted(job_id, message_id, [{"index": index} for index in indices], channel_id=333,
                                  kind=kind, conn=conn)


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
    assert await claim(store) == [job.id]
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
    await claim(store)

    assert await store.finish(job.id, JobState.FAILED, "relay said: content blocked") is True
    assert await store.finish(job.id, JobState.DELIVERED) is False
    assert await claim(store) == []

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
        await store.finish("zzzzzzzz", JobState.FAILED)


async def test_posted_messages_are_recorded_as_they_go_and_map_back_to_the_job(database: Database) -> None:
    store = JobStore(database)
    job = await create(store, request=StoredRequest(prompt="a red fox", size="2K", count=3))
    await post(store, job.id, 10, [0])
    await post(store, job.id, 10, [1])  # the same message, edited to hold one more
    await post(store, job.id, 11, [2])
    await post(store, job.id, 12, [0, 1, 2], kind="show")  # a /show re-post

    stored = await store.get(job.id)
    assert stored.result_message_ids == [10, 11]
    assert [image["index"] for image in stored.images] == [0, 1, 2]
    assert [(m.message_id, m.kind, m.images) for m in await store.messages_of(job.id)] == [
        (10, "result", [0, 1]), (11, "result", [2]), (12, "show", [0, 1, 2])]
    for message_id in (10, 11, 12):
        found = await store.job_for_message(message_id)
        assert found is not None and found.id == job.id
    assert await store.job_for_message(13) is None


async def test_results_are_kept_until_the_job_ends(database: Database) -> None:
    store = JobStore(database)
    job = await create(store)
    await store.save_result(job.id, GeneratedImage(index=1, content=b"\x89PNG two", size="2x2",
                                                   content_type="image/png"))
    await store.save_result(job.id, GeneratedImage(index=0, content=b"\xff\xd8 one"))

    kept = await store.results(job.id)
    assert [(image.index, image.content, image.size) for image in kept] == [(0, b"\xff\xd8 one", None),
                                                                            (1, b"\x89PNG two", "2x2")]
    await store.finish(job.id, JobState.DELIVERED)
    assert await store.results(job.id) == []


async def test_the_sweep_frees_the_kept_images_of_ended_jobs_only(database: Database) -> None:
    store = JobStore(database)
    ended, running = await create(store), await create(store)
    for job in (ended, running):
        for index in (0, 1):
            await store.save_result(job.id, GeneratedImage(index=index, content=b"\xff\xd8 image"))
    await store.finish(ended.id, JobState.FAILED, "the relay failed")

    assert await store.drop_finished_results() == 2
    async with database.engine.connect() as conn:
        left = (await conn.execute(sa.select(job_results.c.job_id).distinct())).scalars().all()
    assert left == [running.id]
    assert len(await store.results(running.id)) == 2
    assert await store.drop_finished_results() == 0


async def test_the_delivery_record_is_kept_out_of_reprs_and_dropped_once_the_requester_is_told(
        database: Database) -> None:
    store = JobStore(database)
    job = await create(store, delivery={"via": "interaction", "token": "secret-token"})
    stored = await store.get(job.id)
    assert stored.delivery == {"via": "interaction", "token": "secret-token"}
    assert "secret-token" not in repr(stored)
    await store.finish(job.id, JobState.DELIVERED)
    assert [unannounced.id for unannounced in await store.unannounced(own=True)] == [job.id]
    await store.announced(job.id)  # the requester was told: nothing left to deliver
    assert (await store.get(job.id)).delivery is None
    assert await store.unannounced(own=True) == []


async def test_unfinished_lists_queued_and_running_jobs_oldest_first(database: Database) -> None:
    clock = Clock()
    store = JobStore(database, clock=clock)
    queued = await create(store)
    clock.now += timedelta(seconds=1)
    running = await create(store)
    assert await claim(store, capacity=2) == [queued.id, running.id]
    clock.now += timedelta(seconds=1)
    delivered = await create(store)
    await store.finish(delivered.id, JobState.DELIVERED)
    failed = await create(store)
    await store.finish(failed.id, JobState.FAILED, "boom")

    assert [job.id for job in await store.unfinished()] == [queued.id, running.id]
    assert [job.state for job in await store.unfinished()] == [JobState.RUNNING, JobState.RUNNING]


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


async def test_abandoned_jobs_are_queued_again_when_their_lease_ran_out_or_this_instance_owned_them(
        database: Database) -> None:
    clock = Clock()
    mine = JobStore(database, owner="a", lease=timedelta(seconds=30), clock=clock)
    theirs = JobStore(database, owner="b", lease=timedelta(seconds=30), clock=clock)
    own_job = await create(mine)
    clock.now += timedelta(seconds=1)
    their_job = await create(theirs)
    assert await claim(mine, capacity=1) == [own_job.id]
    assert await claim(theirs, capacity=1) == [their_job.id]

    assert await mine.requeue_abandoned(own=False) == []
    clock.now += timedelta(seconds=20)
    assert await theirs.heartbeat() == 1  # b is alive: its lease moves on
    clock.now += timedelta(seconds=20)
    assert [job.id for job in await mine.requeue_abandoned(own=False)] == [own_job.id]  # a renewed nothing
    assert (await mine.get(own_job.id)).state is JobState.QUEUED

    clock.now += timedelta(seconds=31)
    assert [job.id for job in await mine.requeue_abandoned(own=False)] == [their_job.id]
    stored = await theirs.get(their_job.id)
    assert stored.state is JobState.QUEUED and stored.lease_owner is None

    # A restart under the same name takes its own jobs back at once, without waiting for the lease.
    assert await claim(mine, capacity=1) == [own_job.id]
    assert [job.id for job in await mine.requeue_abandoned(own=True)] == [own_job.id]

    assert await claim(theirs) == [own_job.id, their_job.id]
    await theirs.finish(their_job.id, JobState.DELIVERED)
    await theirs.announced(their_job.id)
    finished = await theirs.get(their_job.id)
    assert finished is not None and finished.lease_owner is None and finished.lease_expires_at is None


async def test_a_shutdown_hands_its_running_jobs_back_to_the_queue_at_once(database: Database) -> None:
    mine, theirs = JobStore(database, owner="a"), JobStore(database, owner="b")
    job = await create(mine)
    assert await claim(mine) == [job.id]
    assert await mine.hand_back() == 1
    assert await claim(theirs) == [job.id]  # no lease to wait for


async def test_claims_are_fifo_skip_members_at_their_limit_and_respect_relay_slots(database: Database) -> None:
    clock = Clock()
    store = JobStore(database, clock=clock)
    ids = []
    for requester, slots in ((1, 1), (1, 1), (2, 1), (3, 2), (4, 1)):
        clock.now += timedelta(seconds=1)
        ids.append((await create(store, requester_id=requester, relay_slots=slots)).id)

    # Member 1's second job waits (one each); member 3's two-slot job does not fit in what is left,
    # and the younger job behind it does not jump it.
    assert await claim(store, relay_slots=3, per_user=1) == [ids[0], ids[2]]
    assert await claim(store, relay_slots=3, per_user=1) == []
    await store.finish(ids[0], JobState.DELIVERED)
    assert await claim(store, relay_slots=3, per_user=1) == [ids[1]]
    await store.finish(ids[1], JobState.DELIVERED)
    await store.finish(ids[2], JobState.DELIVERED)
    assert await claim(store, relay_slots=3, per_user=1) == [ids[3], ids[4]]


async def test_concurrent_claims_from_many_processes_never_exceed_the_shared_limits(database: Database) -> None:
    stores = [JobStore(database, owner=f"process-{n}") for n in range(4)]
    for n in range(40):
        await create(stores[0], requester_id=n % 5)
    claimed = await asyncio.gather(*(claim(store, capacity=10, relay_slots=6, per_user=2) for store in stores * 3))
    taken = [job_id for batch in claimed for job_id in batch]
    assert len(taken) == len(set(taken)) == 6  # each job once, six slots in all
    running = [job for job in await stores[0].unfinished() if job.state is JobState.RUNNING]
    assert len(running) == 6
    per_member: dict[int, int] = {}
    for job in running:
        per_member[job.requester_id] = per_member.get(job.requester_id, 0) + 1
    assert max(per_member.values()) <= 2


async def test_a_claim_says_whether_it_left_jobs_queued(database: Database) -> None:
    store = JobStore(database)
    first, second = await create(store), await create(store)

    claim = await store.claim(capacity=1, relay_slots=10, per_user=10)
    assert ([job.id for job in claim.jobs], claim.waiting) == ([first.id], True)
    claim = await store.claim(capacity=1, relay_slots=10, per_user=10)
    assert ([job.id for job in claim.jobs], claim.waiting) == ([second.id], False)
    assert (await store.claim(capacity=1, relay_slots=10, per_user=10)).waiting is False


async def test_a_claim_that_may_not_wait_leaves_a_held_queue_to_the_claim_holding_it(database: Database) -> None:
    """A submit's claim does not queue behind another claim's transaction (PostgreSQL: the claim
    lock is held until it commits); it reports jobs waiting, so the pump claims them."""
    store = JobStore(database)
    job = await create(store)
    if database.dialect == "sqlite":  # one writer at a time: the write lock already serialises claims
        claim = await store.claim(capacity=1, relay_slots=10, per_user=10, wait=False)
        assert [claimed.id for claimed in claim.jobs] == [job.id]
        return
    async with database.transaction() as holding:  # another process's claim, not committed yet
        await holding.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK)))
        async with database.transaction() as other:
            claim = await asyncio.wait_for(
                store.claim(capacity=1, relay_slots=10, per_user=10, conn=other, wait=False), 5)
        assert (claim.jobs, claim.waiting) == ([], True)
    claim = await store.claim(capacity=1, relay_slots=10, per_user=10, wait=False)  # the lock is free again
    assert [claimed.id for claimed in claim.jobs] == [job.id]
