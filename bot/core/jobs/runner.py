"""The job runner: queue, fairness, concurrency, and a job's life from request to delivery.

A job is `queued -> running -> delivered | failed`. The runner knows nothing of Discord: it
talks to an `ImageGenerator` (the relay client), a `JobStore`, an optional quota gate, and a
`DeliveryTarget` that the Discord side implements for each request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.images.packing import OutgoingFile, fit_images
from bot.core.jobs.delivery import DeliveryTarget, JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress
from bot.core.jobs.spec import JobSpec
from bot.core.relay.errors import SeedreamError
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageEvent, ImageFailure
from bot.storage.jobs import JobRecord, JobState, JobStore

log = logging.getLogger(__name__)


class ImageGenerator(Protocol):
    def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]: ...


class QuotaGate(Protocol):
    """What the runner needs of the quota ledger (reserve happens before a job is queued)."""

    async def commit(self, job_id: str, produced: int, *, conn: AsyncConnection | None = None) -> None: ...

    async def release(self, job_id: str, reason: str, *, conn: AsyncConnection | None = None) -> None: ...


@dataclass(eq=False)
class _Waiting:
    job: JobRecord
    spec: JobSpec
    target: DeliveryTarget
    done: asyncio.Future[JobOutcome]
    started: bool = False


class JobRunner:
    """Runs jobs with a global limit on relay calls and at most `per_user_limit` running per user.

    Jobs that cannot start wait in one FIFO list; a user's extra jobs wait without blocking
    other users' jobs behind them, so one member cannot starve a server.
    """

    def __init__(
        self,
        generator: ImageGenerator,
        store: JobStore,
        *,
        concurrency: int,
        per_user_limit: int,
        quota: QuotaGate | None = None,
        delivery_attempts: int = 4,
        delivery_backoff: float = 1.0,
    ) -> None:
        self._generator = generator
        self._store = store
        self._quota = quota
        self._concurrency = concurrency
        self._per_user_limit = per_user_limit
        self._delivery_attempts = delivery_attempts
        self._delivery_backoff = delivery_backoff
        self._waiting: list[_Waiting] = []
        self._running: dict[int, int] = {}
        self._running_total = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def running(self) -> int:
        return self._running_total

    async def drain(self, grace: float) -> bool:
        """Start no more jobs and wait up to `grace` seconds for the running ones to end.

        True when none is left running. Jobs still waiting stay queued in their rows (and are
        settled at the next start).
        """
        self._draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    async def submit(self, job: JobRecord, spec: JobSpec, target: DeliveryTarget) -> asyncio.Future[JobOutcome]:
        """Queue a stored job; returns a future that resolves when the job has ended."""
        done: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(job, spec, target, done))
        self._schedule()
        await self._report_positions()
        return done

    def _can_start(self, user_id: int) -> bool:
        return self._running.get(user_id, 0) < self._per_user_limit

    def _schedule(self) -> None:
        index = 0
        while not self._draining and self._running_total < self._concurrency and index < len(self._waiting):
            entry = self._waiting[index]
            if not self._can_start(entry.spec.requester_id):
                index += 1
                continue
            self._waiting.pop(index)
            entry.started = True
            self._running[entry.spec.requester_id] = self._running.get(entry.spec.requester_id, 0) + 1
            self._running_total += 1
            self._idle.clear()
            task = asyncio.create_task(self._run(entry), name=f"job-{entry.job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _report_positions(self) -> None:
        # Each report awaits Discord, so the queue can move meanwhile: skip a job that has started
        # since (it must never be shown a queue position again).
        position = 0
        for entry in list(self._waiting):
            if entry.started:
                continue
            position += 1
            await _quietly(entry.target.progress(entry.job, Progress("queued", position=position)))

    async def _run(self, entry: _Waiting) -> None:
        try:
            outcome = await self._execute(entry.job, entry.spec, entry.target)
            entry.done.set_result(outcome)
        except asyncio.CancelledError:
            entry.done.cancel()
            raise
        except Exception as error:  # the future must always resolve
            if not entry.done.done():
                entry.done.set_exception(error)
        finally:
            user = entry.spec.requester_id
            self._running[user] -= 1
            if not self._running[user]:
                del self._running[user]
            self._running_total -= 1
            if not self._running_total:
                self._idle.set()
            moved = bool(self._waiting) and not self._draining
            self._schedule()
            if moved:
                await self._report_positions()

    async def _execute(self, job: JobRecord, spec: JobSpec, target: DeliveryTarget) -> JobOutcome:
        started = time.monotonic()
        await self._store.mark_running(job.id)
        total = spec.request.count
        await _quietly(target.progress(job, Progress("generating", done=0, total=total)))
        sender = _BatchSender(self, job, target, total, started)
        failures: list[ImageFailure] = []
        error: SeedreamError | None = None
        try:
            async for event in self._generator.generate(spec.request):
                if isinstance(event, GeneratedImage):
                    sender.add(event)
                    await _quietly(target.progress(job, Progress("generating", done=sender.received, total=total)))
                else:
                    log.info("job %s: image %d failed: %s", job.id, event.index,
                             event.error.code or type(event.error).__name__)
                    failures.append(event)
        except SeedreamError as relay_error:
            error = relay_error
            log.info("job %s failed at the relay: %s", job.id, relay_error.code or type(relay_error).__name__)
        except Exception:
            log.exception("job %s: unexpected error while generating", job.id)
            error = SeedreamError()
        except asyncio.CancelledError:  # shutdown: the row stays unfinished and is settled at the next start
            sender.cancel()
            raise
        await sender.close()
        return await self._settle(job, target, sender, failures, error, started)

    async def _settle(
        self,
        job: JobRecord,
        target: DeliveryTarget,
        sender: _BatchSender,
        failures: list[ImageFailure],
        error: SeedreamError | None,
        started: float,
    ) -> JobOutcome:
        delivered = sender.delivered
        state = JobState.DELIVERED if delivered else JobState.FAILED
        if error is None and not delivered and failures:
            error = failures[0].error
        message = str(error.user_message) if error else None
        async with self._store.transaction() as conn:  # the job's end, its results and its charge, together
            ours = await self._store.finish(
                job.id, state, message, message_ids=sender.message_ids, images=sender.images, conn=conn
            )
            # A job whose lease ran out (this process stalled) may have been settled elsewhere:
            # then it was refunded there, and charging it here would count it twice.
            if ours and self._quota is not None:
                if delivered:
                    await self._quota.commit(job.id, delivered, conn=conn)
                else:
                    await self._quota.release(job.id, message or "no image produced", conn=conn)
        final = dataclasses.replace(
            job, state=state, error=message, result_message_ids=sender.message_ids, images=sender.images
        )
        outcome = JobOutcome(final, delivered, failures, time.monotonic() - started, error, sender.lost)
        await _quietly(target.finished(outcome))
        return outcome

    async def _send_with_retries(self, target: DeliveryTarget, batch: ResultBatch) -> list[int]:
        for attempt in range(self._delivery_attempts):
            try:
                return await target.send_images(batch)
            except Exception:
                log.warning("job %s: posting images failed (attempt %d)", batch.job.id, attempt + 1,
                            exc_info=True)
                if attempt + 1 == self._delivery_attempts:
                    raise
                await asyncio.sleep(self._delivery_backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def shutdown(self) -> None:
        """Stop running jobs (their rows stay unfinished and are settled at the next start)."""
        self._draining = True
        for entry in self._waiting:
            entry.done.cancel()
        self._waiting.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)



@dataclass(eq=False)
class _BatchSender:
    """Posts images as they arrive; images that arrive while a post is in flight share the next one."""

    _runner: JobRunner
    _job: JobRecord
    _target: DeliveryTarget
    _total: int
    _started: float
    received: int = 0
    delivered: int = 0
    lost: int = 0  # generated but not postable: reported to the member, never silent
    message_ids: list[int] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    _pending: list[GeneratedImage] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False

    def __post_init__(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def add(self, image: GeneratedImage) -> None:
        self._pending.append(image)
        self.received += 1
        self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._pending:
                images, self._pending = self._pending, []
                try:
                    await self._post(images)
                except Exception:  # e.g. an image that cannot be fitted at all
                    log.exception("job %s: %d image(s) could not be posted", self._job.id, len(images))
                    self.lost += len(images)
            if self._closing and not self._pending:
                return

    async def _post(self, images: Sequence[GeneratedImage]) -> None:
        """Fit the images into messages and post them, retrying failed sends."""
        batches = await fit_images(images, job_id=self._job.id, file_limit=self._target.file_limit())
        sizes = {image.index: image.size for image in images if image.size}
        for files in batches:
            batch = ResultBatch(self._job, files, self._total, time.monotonic() - self._started, sizes)
            try:
                message_ids = await self._runner._send_with_retries(self._target, batch)
            except Exception:
                log.exception("job %s: %d image(s) could not be posted", self._job.id, len(files))
                self.lost += len(files)
                continue
            self.message_ids.extend(message_ids)
            self.images.extend(_describe(file) for file in files)
            self.delivered += len(files)

    def cancel(self) -> None:
        self._task.cancel()

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        await self._task


def _describe(file: OutgoingFile) -> dict[str, Any]:
    return {
        "index": file.index,
        "filename": file.filename,
        "bytes": len(file.content),
        "content_type": file.content_type,
        "reencoded": file.reencoded,
    }


async def _quietly(awaitable: Any) -> None:
    """Progress reports are best effort: a failed edit must never fail the job."""
    try:
        await awaitable
    except Exception:
        log.debug("progress report failed", exc_info=True)
