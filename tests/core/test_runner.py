"""JobRunner: fairness, limits, queue positions and a job's end, proved through its protocols.

The generator, the quota gate and the delivery target are scripted fakes the test controls;
the job rows live in a real `JobStore` on a temporary SQLite database. A generation is held
open on an `asyncio.Event` until the test releases it, so no test waits on the wall clock.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.jobs.runner import JobOutcome, JobRunner, JobSpec, Progress, ResultBatch
from bot.core.relay.errors import ContentBlocked, SeedreamError, ServerError
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageEvent, ImageFailure
from bot.storage.database import Database
from bot.storage.jobs import Claim, JobRecord, JobState, JobStore
from tests.conftest import close_database, open_database


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def image(index: int) -> GeneratedImage:
    return GeneratedImage(index=index, content=png((index * 40 % 256, 10, 10)), size="2x2",
                          content_type="image/png")


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the runner (and SQLite's worker thread) make progress until `predicate` holds."""
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


class ScriptedGenerator:
    """Holds each generation (keyed by prompt) open until the test releases it.

    A released generation yields its script (images, failures, or an exception to raise),
    by default `count` images. It tracks how many run at once, in total and per member.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[ImageEvent | BaseException]] = {}
        self.held: set[str] = set()  # prompts that run without waiting for a release
        self._gates: dict[str, asyncio.Event] = {}
        self.active: dict[str, str] = {}  # prompt -> member
        self.started: list[str] = []
        self.finished: list[str] = []
        self.peak_total = 0
        self.peak_by_member: dict[str, int] = {}

    def _gate(self, prompt: str) -> asyncio.Event:
        return self._gates.setdefault(prompt, asyncio.Event())

    def release(self, prompt: str) -> None:
        self._gate(prompt).set()

    def running(self, member: int) -> int:
        return sum(1 for owner in self.active.values() if owner == str(member))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]:
        prompt, member = request.prompt, str(request.user)
        self.active[prompt] = member
        self.started.append(prompt)
        self.peak_total = max(self.peak_total, len(self.active))
        self.peak_by_member[member] = max(self.peak_by_member.get(member, 0),
                                          sum(1 for owner in self.active.values() if owner == member))
        try:
            await self._gate(prompt).wait()
            for item in self.scripts.get(prompt, [image(i) for i in range(request.count)]):
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            del self.active[prompt]
            self.finished.append(prompt)


class RecordingQuota:
    def __init__(self) -> None:
        self.commits: list[tuple[str, int]] = []
        self.releases: list[tuple[str, str]] = []
        self.charges: list[tuple[str, int]] = []

    async def charge_delivered(self, job_id: str, images: int, *, conn: Any) -> None:
        assert conn is not None, "a charge must be written in the transaction that records its message"
        self.charges.append((job_id, images))

    async def commit(self, job_id: str, produced: int, *, conn: Any = None) -> None:
        assert conn is not None, "the charge must be settled in the job's own transaction"
        self.commits.append((job_id, produced))

    async def release(self, job_id: str, reason: str, *, conn: Any = None) -> None:
        assert conn is not None, "the release must be settled in the job's own transaction"
        self.releases.append((job_id, reason))


class RecordingTarget:
    """One request's delivery target: records progress, posted batches and the outcome."""

    _next_message_id = 9000

    def __init__(self) -> None:
        self.reports: list[Progress] = []
        self.batches: list[ResultBatch] = []
        self.message_ids: list[int] = []
        self.outcomes: list[JobOutcome] = []

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        self.reports.append(progress)

    def file_limit(self) -> int:
        return 10 * 2**20

    async def send_images(self, batch: ResultBatch) -> list[int]:
        self.batches.append(batch)
        RecordingTarget._next_message_id += 1
        self.message_ids.append(RecordingTarget._next_message_id)
        return [RecordingTarget._next_message_id]

    async def finished(self, outcome: JobOutcome) -> None:
        self.outcomes.append(outcome)

    async def send_final(self, batch: ResultBatch, outcome: JobOutcome) -> list[int]:
        posted = await self.send_images(batch)
        await self.finished(outcome)
        return posted

    async def find_posted(self, job: JobRecord) -> dict[int, list[int]]:
        return {}

    def queued_positions(self) -> list[int]:
        return [report.position for report in self.reports if report.state == "queued"]


class SpyJobStore(JobStore):
    """The real store, noting the order in which the runner claims jobs."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.marked_running: list[str] = []

    async def claim(self, *, capacity: int, relay_slots: int, per_user: int,
                    conn: AsyncConnection | None = None, wait: bool = True) -> Claim:
        claim = await super().claim(capacity=capacity, relay_slots=relay_slots, per_user=per_user, conn=conn,
                                    wait=wait)
        self.marked_running.extend(job.id for job in claim.jobs)
        return claim


class Harness:
    def __init__(self, store: SpyJobStore, generator: ScriptedGenerator, quota: RecordingQuota,
                 runner: JobRunner) -> None:
        self.store, self.generator, self.quota, self.runner = store, generator, quota, runner
        self.labels: dict[str, str] = {}  # job id -> prompt
        self.targets: dict[str, RecordingTarget] = {}  # prompt -> target
        self.jobs: dict[str, JobRecord] = {}  # prompt -> job
        self.futures: dict[str, asyncio.Future[JobOutcome]] = {}

    async def submit(self, member: int, prompt: str, count: int = 1) -> asyncio.Future[JobOutcome]:
        request = GenerationRequest(prompt=prompt, size="2K", count=count, user=str(member))
        spec = JobSpec(kind="imagine", requester_id=member, guild_id=1, channel_id=2, request=request)
        target = RecordingTarget()
        async with self.store.transaction() as conn:  # noted before the commit, as JobService does
            job = await self.store.create(kind=spec.kind, requester_id=member, guild_id=1, channel_id=2,
                                          request=spec.stored_request(), conn=conn)
            future = self.runner.submit(job, spec, target)
            claim = await self.runner.claim_in(conn)
        self.runner.begin(claim)
        self.labels[job.id], self.targets[prompt], self.jobs[prompt] = prompt, target, job
        self.futures[prompt] = future
        return future

    def start_order(self) -> list[str]:
        return [self.labels[job_id] for job_id in self.store.marked_running]

    async def generating(self, *prompts: str) -> None:
        await until(lambda: all(p in self.generator.active for p in prompts), f"{prompts} to be generating")

    async def finish(self, prompt: str) -> JobOutcome:
        self.generator.release(prompt)
        return await asyncio.wait_for(self.futures[prompt], 2)


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    db, _ = await open_database("sqlite", tmp_path)
    runners: list[JobRunner] = []

    def make(*, concurrency: int, per_user_limit: int, poll_interval: float = 1.0) -> Harness:
        store, generator, quota = SpyJobStore(db), ScriptedGenerator(), RecordingQuota()
        runner = JobRunner(generator, store, concurrency=concurrency, per_user_limit=per_user_limit,
                           quota=quota, delivery_backoff=0, poll_interval=poll_interval)
        runners.append(runner)
        return Harness(store, generator, quota, runner)

    try:
        yield make
    finally:
        for runner in runners:
            await runner.shutdown()
        await close_database(db)


ALICE, BOB, CAROL = 101, 202, 303


# --- fairness -------------------------------------------------------------------------------


async def test_jobs_start_in_the_order_they_were_submitted_across_members(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    order = [(ALICE, "a1"), (BOB, "b1"), (CAROL, "c1"), (BOB, "b2"), (ALICE, "a2")]
    for member, prompt in order:
        await h.submit(member, prompt)

    for _, prompt in order:
        await h.generating(prompt)
        await h.finish(prompt)

    assert h.start_order() == [prompt for _, prompt in order]
    assert h.generator.started == [prompt for _, prompt in order]


async def test_a_queued_job_starts_as_soon_as_room_is_made_not_at_the_next_poll(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1, poll_interval=60)
    await h.submit(ALICE, "a1")  # starts in its own transaction's claim
    await h.generating("a1")
    await h.submit(BOB, "b1")  # no room: queued
    await asyncio.sleep(0.05)
    assert "b1" not in h.generator.active

    await h.finish("a1")
    await asyncio.wait_for(h.generating("b1"), 1)  # long before the 60 s poll
    assert h.start_order() == ["a1", "b1"]


async def test_a_members_third_job_waits_without_holding_up_others(make_harness) -> None:
    h = make_harness(concurrency=3, per_user_limit=2)
    for prompt in ("a1", "a2", "a3"):
        await h.submit(ALICE, prompt)
    await h.submit(BOB, "b1")

    await h.generating("a1", "a2", "b1")
    assert h.start_order() == ["a1", "a2", "b1"]
    assert "a3" not in h.generator.active
    await until(lambda: bool(h.targets["a3"].queued_positions()), "a3 to be told its place")
    assert h.targets["a3"].queued_positions()[-1] == 1


async def test_a_free_slot_does_not_start_a_members_job_while_they_are_at_their_limit(make_harness) -> None:
    h = make_harness(concurrency=3, per_user_limit=2)
    for prompt in ("a1", "a2", "a3"):
        await h.submit(ALICE, prompt)
    await h.submit(BOB, "b1")
    await h.generating("a1", "a2", "b1")

    await h.finish("b1")  # a global slot frees, but Alice still runs two
    await h.submit(CAROL, "c1")  # queued behind a3, yet starts first
    await h.generating("c1")
    assert "a3" not in h.generator.active

    await h.finish("a1")  # now Alice is under her limit
    await h.generating("a3")
    assert h.start_order() == ["a1", "a2", "b1", "c1", "a3"]


# --- limits ---------------------------------------------------------------------------------


async def test_never_more_than_the_per_user_limit_or_the_global_concurrency_run_at_once(make_harness) -> None:
    h = make_harness(concurrency=3, per_user_limit=2)
    prompts = []
    for round_ in range(4):
        for member in (ALICE, BOB, CAROL):
            prompt = f"{member}-{round_}"
            prompts.append(prompt)
            await h.submit(member, prompt)

    shuffle = random.Random(7)
    remaining = set(prompts)
    while remaining:
        await until(lambda: bool(h.generator.active), "a job to be generating")
        assert len(h.generator.active) <= 3
        assert all(h.generator.running(member) <= 2 for member in (ALICE, BOB, CAROL))
        prompt = shuffle.choice(sorted(h.generator.active))
        await h.finish(prompt)
        remaining.discard(prompt)

    assert h.generator.peak_total == 3  # the limit was reached, never passed
    assert max(h.generator.peak_by_member.values()) == 2
    assert h.runner.running == 0
    assert sorted(h.generator.finished) == sorted(prompts)


async def test_one_member_alone_runs_only_their_limit_even_with_slots_free(make_harness) -> None:
    h = make_harness(concurrency=4, per_user_limit=2)
    for prompt in ("a1", "a2", "a3", "a4"):
        await h.submit(ALICE, prompt)

    await h.generating("a1", "a2")
    assert h.runner.running == 2
    await h.finish("a1")
    await h.generating("a3")
    assert h.generator.peak_by_member[str(ALICE)] == 2
    await until(lambda: h.targets["a4"].queued_positions()[-1:] == [1], "a4 to be told it is next")


# --- queue positions ------------------------------------------------------------------------


async def test_waiting_jobs_are_told_their_one_based_queue_position(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    await h.submit(ALICE, "a1")
    await h.submit(BOB, "b1")
    await h.submit(CAROL, "c1")
    await until(lambda: h.targets["c1"].queued_positions() == [2], "c1 to be told its place")

    assert h.targets["a1"].queued_positions() == []  # it started at once
    assert h.targets["b1"].queued_positions()[-1] == 1


async def test_queue_positions_move_up_as_jobs_finish(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    for member, prompt in ((ALICE, "a1"), (BOB, "b1"), (CAROL, "c1"), (ALICE, "a2")):
        await h.submit(member, prompt)
    await until(lambda: h.targets["a2"].queued_positions() == [3], "a2 to be told its place")

    await h.generating("a1")
    await h.finish("a1")
    await until(lambda: h.targets["a2"].queued_positions()[-1] == 2, "a2 to move up to 2")
    assert h.targets["c1"].queued_positions()[-1] == 1

    await h.generating("b1")
    await h.finish("b1")
    await until(lambda: h.targets["a2"].queued_positions()[-1] == 1, "a2 to move up to 1")

    await h.generating("c1")
    await h.finish("c1")
    await h.generating("a2")
    assert h.targets["a2"].queued_positions() == [3, 2, 1]
    assert h.targets["a2"].reports[-1].state == "generating"


# --- a job's end ----------------------------------------------------------------------------


async def test_a_relay_error_fails_the_job_releases_the_quota_and_resolves_the_future(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    error = ServerError(code="InternalServiceError")
    h.generator.scripts["a1"] = [error]
    await h.submit(ALICE, "a1")
    await h.submit(BOB, "b1")

    outcome = await h.finish("a1")

    job_id = h.jobs["a1"].id
    assert outcome.error is error
    assert outcome.delivered == 0
    assert outcome.job.state is JobState.FAILED
    assert h.quota.releases == [(job_id, ServerError.user_message)]
    assert h.quota.commits == []
    assert h.targets["a1"].batches == []
    assert h.targets["a1"].outcomes == [outcome]
    stored = await h.store.get(job_id)
    assert stored is not None and stored.state is JobState.FAILED
    assert stored.error == ServerError.user_message
    await h.generating("b1")  # the failed job gave its slot back
    assert h.runner.running == 1


async def test_an_unexpected_generator_crash_still_fails_the_job_and_releases_the_quota(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    h.generator.scripts["a1"] = [RuntimeError("bug in the relay client")]
    await h.submit(ALICE, "a1")

    outcome = await h.finish("a1")

    assert isinstance(outcome.error, SeedreamError)
    assert outcome.job.state is JobState.FAILED
    assert h.quota.releases == [(h.jobs["a1"].id, SeedreamError.user_message)]
    assert h.runner.running == 0


async def test_a_partial_set_commits_only_the_delivered_images(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    blocked = ContentBlocked(kind="output_image")
    h.generator.scripts["a1"] = [image(0), ImageFailure(1, blocked), image(2), ImageFailure(3, blocked)]
    await h.submit(ALICE, "a1", count=4)

    outcome = await h.finish("a1")

    job_id = h.jobs["a1"].id
    assert outcome.delivered == 2
    assert [failure.index for failure in outcome.failures] == [1, 3]
    assert outcome.error is None
    assert outcome.job.state is JobState.DELIVERED
    assert h.quota.commits == [(job_id, 2)]
    assert h.quota.releases == []
    posted = [file.index for batch in h.targets["a1"].batches for file in batch.files]
    assert posted == [0, 2]
    stored = await h.store.get(job_id)
    assert stored is not None and stored.state is JobState.DELIVERED
    assert [entry["index"] for entry in stored.images] == [0, 2]


async def test_a_set_where_every_image_fails_is_failed_with_the_first_failure_and_released(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    blocked = ContentBlocked(kind="output_image")
    h.generator.scripts["a1"] = [ImageFailure(0, blocked), ImageFailure(1, ServerError())]
    await h.submit(ALICE, "a1", count=2)

    outcome = await h.finish("a1")

    assert outcome.delivered == 0
    assert outcome.error is blocked
    assert outcome.job.state is JobState.FAILED
    assert h.quota.releases == [(h.jobs["a1"].id, ContentBlocked.user_message)]
    assert h.quota.commits == []


async def test_a_relay_error_after_some_images_commits_what_was_delivered(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    error = ServerError()
    h.generator.scripts["a1"] = [image(0), error]
    await h.submit(ALICE, "a1", count=3)

    outcome = await h.finish("a1")

    assert outcome.delivered == 1
    assert outcome.error is error
    assert outcome.job.state is JobState.DELIVERED
    assert h.quota.commits == [(h.jobs["a1"].id, 1)]
    assert h.quota.releases == []


async def test_images_are_posted_through_the_delivery_target_and_counted(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    await h.submit(ALICE, "a1", count=3)

    outcome = await h.finish("a1")

    target = h.targets["a1"]
    files = [file for batch in target.batches for file in batch.files]
    assert [file.index for file in files] == [0, 1, 2]
    assert [file.content for file in files] == [image(i).content for i in range(3)]  # byte-identical
    assert all(file.content_type == "image/png" for file in files)
    assert all(batch.total_expected == 3 and batch.job.id == h.jobs["a1"].id for batch in target.batches)
    assert outcome.delivered == 3 and outcome.undelivered == 0 and outcome.failures == []
    assert outcome.job.state is JobState.DELIVERED
    assert outcome.job.result_message_ids == target.message_ids
    # Told once. Whether the set went as one message (its ids known only after it was posted) or
    # image by image depends on how fast the images came; either way the telling is the same.
    [told] = target.outcomes
    assert (told.job.id, told.job.state, told.delivered, told.undelivered) == (outcome.job.id, JobState.DELIVERED, 3, 0)
    assert h.quota.commits == [(h.jobs["a1"].id, 3)]
    stored = await h.store.get(h.jobs["a1"].id)
    assert stored is not None
    assert stored.state is JobState.DELIVERED
    assert stored.result_message_ids == target.message_ids
    assert len(stored.images) == 3
    generating = [report for report in target.reports if report.state == "generating"]
    assert generating[0] == Progress("generating", done=0, total=3)
    assert generating[-1] == Progress("generating", done=3, total=3)


# --- known defects --------------------------------------------------------------------------


class SlowQueuedTarget(RecordingTarget):
    """A target whose `n`-th queued report hangs (a rate-limited Discord edit) until released."""

    def __init__(self, hang_on: int) -> None:
        super().__init__()
        self.hang_on = hang_on
        self.hanging = asyncio.Event()
        self.unhang = asyncio.Event()
        self._queued_seen = 0

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        if progress.state == "queued":
            self._queued_seen += 1
            if self._queued_seen == self.hang_on:
                self.hanging.set()
                await self.unhang.wait()
        await super().progress(job, progress)


async def test_a_job_that_has_started_is_never_sent_a_queue_position_again(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    await h.submit(ALICE, "a1")
    await h.generating("a1")

    # b1's first queued report hangs (a rate-limited Discord edit) while c1 waits behind it.
    request = GenerationRequest(prompt="b1", size="2K", user=str(BOB))
    spec = JobSpec(kind="imagine", requester_id=BOB, guild_id=1, channel_id=2, request=request)
    slow = SlowQueuedTarget(hang_on=1)
    async with h.store.transaction() as conn:
        job = await h.store.create(kind="imagine", requester_id=BOB, guild_id=1, channel_id=2,
                                   request=spec.stored_request(), conn=conn)
        h.futures["b1"] = h.runner.submit(job, spec, slow)
    h.labels[job.id], h.targets["b1"], h.jobs["b1"] = "b1", slow, job
    await h.submit(CAROL, "c1")
    await asyncio.wait_for(slow.hanging.wait(), 2)

    # Meanwhile the queue keeps moving (the hung report does not hold up claiming): a1 and b1
    # finish and c1 starts generating.
    h.generator.release("b1")
    await h.finish("a1")
    await asyncio.wait_for(h.futures["b1"], 2)
    await until(lambda: any(r.state == "generating" for r in h.targets["c1"].reports), "c1 to be generating")

    slow.unhang.set()  # the hung edit completes; the report round carries on to c1
    await h.finish("c1")

    reports = h.targets["c1"].reports
    first_generating = next(i for i, r in enumerate(reports) if r.state == "generating")
    assert [r for r in reports[first_generating:] if r.state == "queued"] == []


# --- shutdown -------------------------------------------------------------------------------


async def test_draining_lets_running_jobs_finish_and_starts_no_waiting_one(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    await h.submit(ALICE, "a1")
    await h.submit(BOB, "b1")
    await h.generating("a1")

    drained = asyncio.create_task(h.runner.drain(5))
    await h.finish("a1")

    assert await asyncio.wait_for(drained, 2) is True
    assert "b1" not in h.generator.started
    waiting = await h.store.get(h.jobs["b1"].id)
    assert waiting is not None and waiting.state is JobState.QUEUED  # settled at the next start


async def test_draining_gives_up_after_the_grace_period(make_harness) -> None:
    h = make_harness(concurrency=1, per_user_limit=1)
    await h.submit(ALICE, "a1")
    await h.generating("a1")

    assert await h.runner.drain(0) is False
    assert "a1" in h.generator.active
