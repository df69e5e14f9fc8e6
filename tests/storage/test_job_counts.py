"""queued_jobs: the seedream_queue_depth gauge counts stored jobs not started yet, on both backends."""

from __future__ import annotations

from bot.storage.database import Database
from bot.storage.job_counts import queued_jobs
from bot.storage.jobs import JobState, JobStore
from bot.storage.probe import database_answers
from tests.storage.test_jobs import create


async def test_only_queued_jobs_count(database: Database) -> None:
    store = JobStore(database)
    assert await queued_jobs(database) == 0
    first, second, _still_queued = [await create(store) for _ in range(3)]
    assert await queued_jobs(database) == 3

    assert [job.id for job in (await store.claim(capacity=1, relay_slots=1, per_user=1)).jobs] == [first.id]
    await store.finish(second.id, JobState.FAILED, "no image produced")
    assert await queued_jobs(database) == 1


async def test_a_live_database_answers(database: Database) -> None:
    await database_answers(database)
