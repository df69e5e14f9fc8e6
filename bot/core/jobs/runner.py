"""The job runner: claims jobs from the durable queue and takes each from request to delivery.

A job is `queued -> running -> delivered | failed`, and its life is in the database
(bot/storage/jobs.py): the runner claims the oldest jobs that may run (FIFO, at most
`per_user_limit` running per member and `concurrency` relay slots in flight, across every
process sharing the database), keeps each image the relay produces until it is posted, and
records every posted message with its images in the transaction that charges them. So a job a
crash, a deploy or a lost lease interrupted is resumed where it stopped: what was posted is not
posted again, what the relay had produced is posted without a second relay call, and only
what is still missing is generated again (up to `max_attempts` relay calls in all).

The runner knows nothing of Discord: it talks to an `ImageGenerator` (the relay client), a
`JobStore`, an optional quota gate, and a `DeliveryTarget` per job. A job submitted here brings
its target and request; a job resumed from the queue gets them from a `Restorer`, which the
Discord side implements from the job's stored delivery record and request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.errors import UserFacingError
from bot.core.i18n import tr
from bot.core.images.packing import OutgoingFile, fit_images
from bot.core.jobs.delivery import DeliveryTarget, JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress
from bot.core.jobs.spec import JobSpec
from bot.core.relay.errors import SeedreamError
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageEvent, ImageFailure
from bot.storage.jobs import Claim, JobRecord, JobState, JobStore

log = logging.getLogger(__name__)


class ImageGenerator(Protocol):
    def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]: ...


class QuotaGate(Protocol):
    """What the runner needs of the quota ledger (reserve happens before a job is queued)."""

    async def charge_delivered(self, job_id: str, images: int, *, conn: AsyncConnection) -> None: ...

    async def commit(self, job_id: str, produced: int, *, conn: AsyncConnection | None = None) -> None: ...

    async def release(self, job_id: str, reason: str, *, conn: AsyncConnection | None = None) -> None: ...


class Restorer(Protocol):
    """Rebuilds what a job claimed from the queue needs, when no live request brought it here."""

    def target(self, job: JobRecord) -> DeliveryTarget: ...

    async def request(self, job: JobRecord) -> GenerationRequest:
        """The job's relay request again (references fetched afresh); a `UserFacingError` if it
        cannot be rebuilt (a reference was deleted)."""
        ...


class JobInterrupted(UserFacingError):
    user_message = tr("This job was interrupted by restarts too often; only the images delivered were charged. "
                      "Please try again.")


class CannotResume(UserFacingError):
    user_message = tr("The bot restarted and could not resume this job; nothing more was charged. Please try again.")


@dataclass(eq=False)
class _Local:
    """A job submitted in this process: its live target and request, and who waits for its end."""

    job: JobRecord
    request: GenerationRequest
    target: DeliveryTarget
    done: asyncio.Future[JobOutcome]
    position: int = 0
    passed_over: bool = False  # a claim ran since it was queued and did not take it


class JobRunner:
    """Claims and runs jobs from the queue; see the module docstring."""

    def __init__(
        self,
        generator: ImageGenerator,
        store: JobStore,
        *,
        concurrency: int,
        per_user_limit: int,
        quota: QuotaGate | None = None,
        restorer: Restorer | None = None,
        max_attempts: int = 2,
        on_ended: Callable[[JobOutcome], None] | None = None,
        poll_interval: float = 1.0,
        delivery_attempts: int = 4,
        delivery_backoff: float = 1.0,
    ) -> None:
        self._generator = generator
        self._store = store
        self._quota = quota
        self._restorer = restorer
        self._concurrency = concurrency
        self._per_user_limit = per_user_limit
        self._max_attempts = max_attempts
        self._on_ended = on_ended  # e.g. the metrics: told of every job this runner settles
        self._poll_interval = poll_interval
        self._delivery_attempts = delivery_attempts
        self._delivery_backoff = delivery_backoff
        self._local: dict[str, _Local] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._wakeup = asyncio.Event()
        # Whether the last claim left jobs queued: only then is room made worth a claim at once
        # (other processes' jobs, and room they make, are found by the poll).
        self._queue_waiting = True
        self._pump_task: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[Any]] = set()
        self._positions_moved = False

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        """Start claiming jobs from the queue (idempotent; `submit` starts it too)."""
        if self._pump_task is None and not self._draining:
            self._pump_task = asyncio.create_task(self._pump(), name="job-queue")

    def wake(self) -> None:
        """Look at the queue now (a job was queued, or room was made)."""
        self._wakeup.set()

    def submit(self, job: JobRecord, spec: JobSpec, target: DeliveryTarget) -> asyncio.Future[JobOutcome]:
        """Note a job queued by this process, with its live request and target; returns a future
        that resolves when this process has finished it. The job itself waits in the queue like
        any other. Call it before the job's row is committed, so no claim can come first; if the
        commit then fails, `forget` it."""
        done: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self._local[job.id] = _Local(job, spec.request, target, done)
        self.start()
        return done

    async def claim_in(self, conn: AsyncConnection) -> Claim:
        """Claim inside the transaction that queues a job, so a job that may run now starts
        without waiting for the pump's own write (SQLite queues writers); `begin` the claim once
        it has committed. Nothing before the pump runs (the bot not ready yet) or while draining,
        or when another claim holds the queue (PostgreSQL): the pump then claims the job."""
        if self._pump_task is None or self._draining:
            return Claim([], waiting=True)
        return await self._store.claim(capacity=self._concurrency - len(self._running),
                                       relay_slots=self._concurrency, per_user=self._per_user_limit, conn=conn,
                                       wait=False)

    def begin(self, claim: Claim) -> None:
        """Start a committed `claim_in`; a job it left queued is the pump's to claim."""
        for job in claim.jobs:
            if job.id not in self._running:
                self._begin(job)
        self._queue_waiting = claim.waiting
        if claim.waiting:
            self.wake()

    def forget(self, job_id: str) -> None:
        """A submitted job whose row was not stored after all."""
        local = self._local.pop(job_id, None)
        if local is not None:
            local.done.cancel()

    async def drain(self, grace: float) -> bool:
        """Claim no more jobs and wait up to `grace` seconds for the running ones to end.

        True when none is left running. Queued jobs stay in the queue for any process.
        """
        self._draining = True
        self.wake()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    async def shutdown(self) -> None:
        """Stop: jobs still running are cancelled and handed back to the queue at once, so another
        process (or the next start) resumes them without waiting for their lease to run out."""
        self._draining = True
        self.wake()
        if self._pump_task is not None:  # let a claim in flight commit: a cancelled one would hold the lock
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump_task), 5)
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
        unfinished = list(self._running)
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        await asyncio.gather(*self._writes, return_exceptions=True)  # records the cancelled jobs were making
        for local in self._local.values():
            local.done.cancel()
        self._local.clear()
        if unfinished:
            try:
                handed = await self._store.hand_back(unfinished)
            except Exception:  # their leases run out instead
                log.exception("could not hand back %d job(s)", len(unfinished))
            else:
                log.info("handed %d unfinished job(s) back to the queue", handed)

    # --- the queue --------------------------------------------------------------------------

    async def _pump(self) -> None:
        while not self._draining:
            self._wakeup.clear()
            for local in self._local.values():  # committed by now, so this claim sees them
                local.passed_over = local.passed_over or local.job.id not in self._running
            try:
                claim = await self._store.claim(capacity=self._concurrency - len(self._running),
                                                relay_slots=self._concurrency, per_user=self._per_user_limit)
            except Exception:
                log.exception("claiming queued jobs failed")
                claim = Claim([], waiting=True)
            self._queue_waiting = claim.waiting
            for job in claim.jobs:
                self._begin(job)
            self._positions_changed()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    def _begin(self, job: JobRecord) -> None:
        self._idle.clear()
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._running[job.id] = task

    def _positions_changed(self) -> None:
        """Queue reports run beside the pump: a slow Discord edit must not hold up claiming."""
        self._positions_moved = True
        if self._reporter is None or self._reporter.done():
            self._reporter = asyncio.create_task(self._report_while_moving(), name="queue-positions")

    async def _report_while_moving(self) -> None:
        while self._positions_moved and not self._draining:
            self._positions_moved = False
            await self._report_positions()

    async def _report_positions(self) -> None:
        """Tell this process's waiting jobs their place in the (shared) queue when it changed."""
        # Only jobs a claim passed over wait: one queued a moment ago is about to be claimed, and
        # telling it "queued" would be an edit to Discord for nothing.
        waiting = {job_id: local for job_id, local in self._local.items()
                   if job_id not in self._running and local.passed_over}
        if not waiting:
            return
        try:
            positions = await self._store.queue_positions()
        except Exception:
            log.debug("reading queue positions failed", exc_info=True)
            return
        for job_id, local in waiting.items():
            position = positions.get(job_id)
            # Each report awaits Discord, so the queue can move meanwhile: a job that has started
            # since must never be shown a queue position again.
            if position is None or position == local.position or job_id in self._running:
                continue
            local.position = position
            await _quietly(local.target.progress(local.job, Progress("queued", position=position)))

    async def _run(self, job: JobRecord) -> None:
        local = self._local.pop(job.id, None)
        try:
            outcome = await self._resume_or_run(job, local)
            if local is not None and not local.done.done():
                local.done.set_result(outcome)
        except asyncio.CancelledError:
            if local is not None:
                local.done.cancel()
            raise
        except Exception as error:  # the future must always resolve
            log.exception("job %s: the runner failed", job.id)
            if local is not None and not local.done.done():
                local.done.set_exception(error)
        finally:
            self._running.pop(job.id, None)
            if not self._running:
                self._idle.set()
            if self._queue_waiting or self._local:  # room for a job this process or another queued
                self.wake()

    async def _resume_or_run(self, job: JobRecord, local: _Local | None) -> JobOutcome:
        if local is not None:
            return await self._execute(job, local.target, local.request)
        if self._restorer is None:
            raise RuntimeError(f"job {job.id} was claimed from the queue but this runner cannot restore jobs")
        try:
            target = self._restorer.target(job)
        except Exception:  # nowhere to tell the member: settle it so the quota comes back
            log.exception("job %s: its delivery could not be restored", job.id)
            return await self._give_up(job, CannotResume())
        return await self._execute(job, target, None)

    async def _give_up(self, job: JobRecord, error: UserFacingError) -> JobOutcome:
        async with self._store.transaction() as conn:
            ours = await self._store.finish(job.id, JobState.FAILED, str(error.user_message), conn=conn)
            if ours and self._quota is not None:
                await self._quota.release(job.id, "could not be resumed", conn=conn)
        await self._store.announced(job.id)  # there is nowhere to tell
        outcome = JobOutcome(dataclasses.replace(job, state=JobState.FAILED), 0, [], 0.0, error)
        self._ended(outcome)
        return outcome

    # --- one job ----------------------------------------------------------------------------

    async def _execute(self, job: JobRecord, target: DeliveryTarget, request: GenerationRequest | None) -> JobOutcome:
        started = time.monotonic()
        total = job.request.count
        resumed = not job.fresh
        sender = _BatchSender(self, job, target, total, started)
        if resumed:
            await sender.adopt(await _found_quietly(target, job))
        stored = {image.index: image for image in await self._store.results(job.id)} if resumed else {}
        await _quietly(target.progress(job, Progress("generating", done=len(sender.delivered), total=total,
                                                    resumed=resumed)))
        sender.start()
        for index, image in sorted(stored.items()):
            if index not in sender.delivered:
                sender.add(image)
        missing = [index for index in range(total) if index not in sender.delivered and index not in stored]
        failures: list[ImageFailure] = []
        error: UserFacingError | None = None
        try:
            if missing:
                error = await self._generate(job, target, request, missing, sender, failures)
        except asyncio.CancelledError:  # shutdown: the job goes back to the queue, its results kept
            sender.cancel()
            raise
        await sender.close()
        whole = sender.take_whole_job()
        if whole:
            batches = await sender.fit(whole)
            if len(batches) == 1 and error is None and not failures:
                return await self._deliver_whole(job, target, sender, batches[0], started)
            for batch in batches:
                await sender.post(batch)
        return await self._settle(job, target, sender, failures, error, started)

    async def _deliver_whole(self, job: JobRecord, target: DeliveryTarget, sender: _BatchSender,
                             batch: ResultBatch, started: float) -> JobOutcome:
        """Every image in one message: post it with the summary, then record the message, the
        charge, the job's end and the telling in one transaction (a one-image job's whole life
        after the defer is one Discord request and this write)."""
        files = batch.files
        delivered = len(files)
        described = [*sender.images, *(_describe(file) for file in files)]
        final = dataclasses.replace(job, state=JobState.DELIVERED, error=None, images=described)
        outcome = JobOutcome(final, delivered, [], time.monotonic() - started, None, sender.lost)
        try:
            message_ids = await self._send_with_retries(target, batch, final=outcome)
        except Exception:
            log.exception("job %s: %d image(s) could not be posted", job.id, delivered)
            sender.lost += delivered
            return await self._settle(job, target, sender, [], None, started)
        message_ids = [*sender.message_ids, *(i for i in message_ids if i not in sender.message_ids)]
        await self._completed(self._finish_posted(job, message_ids, described, files, delivered))
        outcome = dataclasses.replace(outcome, job=dataclasses.replace(final, result_message_ids=message_ids))
        self._ended(outcome)
        return outcome

    async def _finish_posted(self, job: JobRecord, message_ids: Sequence[int], described: Sequence[Mapping[str, Any]],
                             files: Sequence[OutgoingFile], delivered: int) -> None:
        posted = [dict(image) for image in described if int(image["index"]) in {file.index for file in files}]
        async with self._store.transaction() as conn:
            ours = await self._store.finish_posted(job.id, message_ids[-1], posted, channel_id=job.channel_id,
                                                   result_message_ids=message_ids, images=described, conn=conn)
            if ours and self._quota is not None:
                await self._quota.commit(job.id, delivered, conn=conn)

    async def _generate(
        self,
        job: JobRecord,
        target: DeliveryTarget,
        request: GenerationRequest | None,
        missing: list[int],
        sender: _BatchSender,
        failures: list[ImageFailure],
    ) -> UserFacingError | None:
        """Ask the relay for the `missing` images (all of a fresh job); None unless it failed."""
        if not job.fresh and job.attempts >= self._max_attempts:
            log.info("job %s: %d relay call(s) made already; giving up on %d image(s)",
                     job.id, job.attempts, len(missing))
            return JobInterrupted()
        if request is None:
            assert self._restorer is not None  # a job without a live request came from the queue
            try:
                request = await self._restorer.request(job)
            except UserFacingError as cannot:
                return cannot
        if len(missing) < request.count:
            request = dataclasses.replace(request, count=len(missing))
        if not job.fresh:  # a fresh job's first call was counted when it was claimed
            await self._store.count_attempt(job.id)
        total = job.request.count
        try:
            async for event in self._generator.generate(request):
                index = missing[event.index] if 0 <= event.index < len(missing) else event.index
                event = dataclasses.replace(event, index=index)
                if isinstance(event, GeneratedImage):
                    await self._store.save_result(job.id, event)
                    sender.add(event)
                    await _quietly(target.progress(job, Progress("generating", done=sender.received, total=total)))
                else:
                    log.info("job %s: image %d failed: %s", job.id, event.index,
                             event.error.code or type(event.error).__name__)
                    failures.append(event)
        except SeedreamError as relay_error:
            log.info("job %s failed at the relay: %s", job.id, relay_error.code or type(relay_error).__name__)
            return relay_error
        except Exception:
            log.exception("job %s: unexpected error while generating", job.id)
            return SeedreamError()
        return None

    async def _settle(
        self,
        job: JobRecord,
        target: DeliveryTarget,
        sender: _BatchSender,
        failures: list[ImageFailure],
        error: UserFacingError | None,
        started: float,
    ) -> JobOutcome:
        delivered = len(sender.delivered)
        state = JobState.DELIVERED if delivered else JobState.FAILED
        if error is None and not delivered and failures:
            error = failures[0].error
        message = str(error.user_message) if error else None
        await self._completed(self._finish(job.id, state, message, delivered))
        final = dataclasses.replace(
            job, state=state, error=message, result_message_ids=sender.message_ids, images=sender.images
        )
        outcome = JobOutcome(final, delivered, failures, time.monotonic() - started, error, sender.lost)
        self._ended(outcome)
        await self._announce(target, outcome)
        return outcome

    def _ended(self, outcome: JobOutcome) -> None:
        if self._on_ended is not None:
            try:
                self._on_ended(outcome)
            except Exception:
                log.exception("job %s: its end could not be counted", outcome.job.id)

    async def _announce(self, target: DeliveryTarget, outcome: JobOutcome) -> None:
        """Tell the requester how the job ended, then note that they were told."""
        try:
            await target.finished(outcome)
        except Exception:  # the next start tries again (`announce_unannounced`)
            log.warning("job %s: could not tell its requester how it ended", outcome.job.id, exc_info=True)
            return
        self._in_background(self._store.announced(outcome.job.id))

    async def announce_unannounced(self, *, own: bool) -> int:
        """Tell the requesters of jobs that ended without their being told (a crash came between);
        returns how many were told."""
        if self._restorer is None:
            return 0
        told = 0
        for job in await self._store.unannounced(own=own):
            error = UserFacingError(job.error) if job.error else None
            elapsed = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else 0.0
            outcome = JobOutcome(job, len(job.images), [], elapsed, error)
            try:
                target = self._restorer.target(job)
            except Exception:
                log.exception("job %s: its delivery could not be restored", job.id)
                await self._store.announced(job.id)
                continue
            await self._announce(target, outcome)
            told += 1
        return told

    async def _finish(self, job_id: str, state: JobState, message: str | None, delivered: int) -> None:
        async with self._store.transaction() as conn:  # the job's end and its charge, together
            ours = await self._store.finish(job_id, state, message, conn=conn)
            # A job whose lease ran out (this process stalled) may have been settled elsewhere:
            # then it was charged there, and settling it here would count it twice.
            if ours and self._quota is not None:
                if delivered:
                    await self._quota.commit(job_id, delivered, conn=conn)
                else:
                    await self._quota.release(job_id, message or "no image produced", conn=conn)

    async def _send_with_retries(self, target: DeliveryTarget, batch: ResultBatch, *,
                                 final: JobOutcome | None = None) -> list[int]:
        """Post a batch (with `final`: the job's whole result and its summary); before each retry,
        look whether the failed try did post it after all (its answer lost on the way back), so a
        retry never posts the images twice."""
        for attempt in range(self._delivery_attempts):
            try:
                if attempt and (already := await _posted_already(target, batch)):
                    return already
                if final is not None:
                    return await target.send_final(batch, final)
                return await target.send_images(batch)
            except Exception:
                log.warning("job %s: posting images failed (attempt %d)", batch.job.id, attempt + 1,
                            exc_info=True)
                if attempt + 1 == self._delivery_attempts:
                    raise
                await asyncio.sleep(self._delivery_backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _completed(self, write: Any) -> Any:
        """Run a database write to its end even if the job is cancelled meanwhile (a shutdown): a
        posted message must be recorded, and a write cut short would hold SQLite's lock."""
        future = asyncio.ensure_future(write)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        return await asyncio.shield(future)

    def _in_background(self, write: Any) -> None:
        """A write nobody waits for (shutdown does): the job's future resolves without it."""
        future = asyncio.ensure_future(write)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    async def _record(self, job: JobRecord, message_ids: Sequence[int], files: Sequence[OutgoingFile]) -> None:
        await self._completed(self._record_now(job, message_ids, files))

    async def _record_now(self, job: JobRecord, message_ids: Sequence[int], files: Sequence[OutgoingFile]) -> None:
        """Record the messages now holding `files` and charge the images, in one transaction."""
        described = [_describe(file) for file in files]
        async with self._store.transaction() as conn:
            for message_id in message_ids:
                await self._store.record_posted(job.id, message_id, described, channel_id=job.channel_id, conn=conn)
            if self._quota is not None:
                await self._quota.charge_delivered(job.id, len(files), conn=conn)

    async def _adopt(self, job: JobRecord, message_id: int, indices: Sequence[int]) -> None:
        """Record images a crashed attempt posted but did not record (found in the channel)."""
        described = [{"index": index, "found_after_restart": True} for index in indices]
        async with self._store.transaction() as conn:
            await self._store.record_posted(job.id, message_id, described, channel_id=job.channel_id, conn=conn)
            if self._quota is not None:
                await self._quota.charge_delivered(job.id, len(indices), conn=conn)


@dataclass(eq=False)
class _BatchSender:
    """Posts images as they arrive; images that arrive while a post is in flight share the next one."""

    _runner: JobRunner
    _job: JobRecord
    _target: DeliveryTarget
    _total: int
    _started: float
    received: int = 0
    lost: int = 0  # generated but not postable: reported to the member, never silent
    delivered: set[int] = field(default_factory=set)
    message_ids: list[int] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    _pending: list[GeneratedImage] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _posting: bool = False  # a post has begun: the job is no longer one message with its summary
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.message_ids = list(self._job.result_message_ids)
        self.images = [dict(image) for image in self._job.images]
        self.delivered = {int(image["index"]) for image in self._job.images}
        self.received = len(self.delivered)

    async def adopt(self, found: Mapping[int, Sequence[int]]) -> None:
        """Count as delivered what an earlier attempt posted without recording it."""
        for message_id, indices in found.items():
            new = sorted(set(indices) - self.delivered)
            if not new:
                continue
            log.info("job %s: message %s already holds image(s) %s: not posting them again",
                     self._job.id, message_id, [index + 1 for index in new])
            await self._runner._adopt(self._job, message_id, new)
            self.delivered.update(new)
            self.received += len(new)
            if message_id not in self.message_ids:
                self.message_ids.append(message_id)
            self.images.extend({"index": index, "found_after_restart": True} for index in new)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def add(self, image: GeneratedImage) -> None:
        self._pending.append(image)
        self.received += 1
        self._wakeup.set()

    def _holds_whole_job(self) -> bool:
        """Every image is here and none was posted: they wait for the job's end, to go out in
        one message with its summary (`take_whole_job`)."""
        return bool(self._pending) and not self._posting and not self.delivered and self.received >= self._total

    def take_whole_job(self) -> list[GeneratedImage]:
        """After `close`: the images held back as the job's whole result (else none)."""
        if not self._holds_whole_job():
            return []
        images, self._pending = self._pending, []
        return images

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._pending and not self._holds_whole_job():
                images, self._pending = self._pending, []
                self._posting = True
                try:
                    for batch in await self.fit(images):
                        await self.post(batch)
                except Exception:  # e.g. an image that cannot be fitted at all
                    log.exception("job %s: %d image(s) could not be posted", self._job.id, len(images))
                    self.lost += len(images)
            if self._closing and (not self._pending or self._holds_whole_job()):
                return

    async def fit(self, images: Sequence[GeneratedImage]) -> list[ResultBatch]:
        """The images fitted into messages (re-encoded where a file would be too large)."""
        batches = await fit_images(images, job_id=self._job.id, file_limit=self._target.file_limit())
        sizes = {image.index: image.size for image in images if image.size}
        elapsed = time.monotonic() - self._started
        return [ResultBatch(self._job, files, self._total, elapsed, sizes) for files in batches]

    async def post(self, batch: ResultBatch) -> None:
        """Post one message of images, retrying failed sends; record it with its charge."""
        self._posting = True
        files = batch.files
        try:
            message_ids = await self._runner._send_with_retries(self._target, batch)
        except Exception:
            log.exception("job %s: %d image(s) could not be posted", self._job.id, len(files))
            self.lost += len(files)
            return
        await self._runner._record(self._job, message_ids, files)
        self.message_ids.extend(i for i in message_ids if i not in self.message_ids)
        self.images.extend(_describe(file) for file in files)
        self.delivered.update(file.index for file in files)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task


def _describe(file: OutgoingFile) -> dict[str, Any]:
    return {
        "index": file.index,
        "filename": file.filename,
        "bytes": len(file.content),
        "content_type": file.content_type,
        "reencoded": file.reencoded,
    }


async def _posted_already(target: DeliveryTarget, batch: ResultBatch) -> list[int]:
    """The messages that already hold every image of `batch`, if some do."""
    wanted = {file.index for file in batch.files}
    found = await _found_quietly(target, batch.job)
    holding = [message_id for message_id, indices in found.items() if wanted & set(indices)]
    covered = {index for message_id in holding for index in found[message_id]}
    return holding if wanted <= covered else []


async def _found_quietly(target: DeliveryTarget, job: JobRecord) -> Mapping[int, Sequence[int]]:
    try:
        return await target.find_posted(job)
    except Exception:
        log.warning("job %s: could not look for its earlier posts", job.id, exc_info=True)
        return {}


async def _quietly(awaitable: Any) -> None:
    """Progress reports are best effort: a failed edit must never fail the job."""
    try:
        await awaitable
    except Exception:
        log.debug("progress report failed", exc_info=True)
