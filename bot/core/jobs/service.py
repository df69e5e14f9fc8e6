"""Queueing a job, and putting back in the queue the jobs no live process holds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.core.jobs.delivery import DeliveryTarget, JobOutcome
from bot.core.jobs.runner import JobRunner
from bot.core.jobs.spec import JobSpec
from bot.core.quota import DIRECT_MESSAGES, QuotaService, QuotaStatus
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobStore

log = logging.getLogger(__name__)


class JobService:
    def __init__(self, database: Database, store: JobStore, quota: QuotaService, runner: JobRunner,
                 *, relay_concurrency: int) -> None:
        self._database = database
        self._store = store
        self._quota = quota
        self._runner = runner
        self._relay_concurrency = relay_concurrency

    async def submit(
        self,
        spec: JobSpec,
        delivery: Mapping[str, Any],
        make_target: Callable[[JobRecord, QuotaStatus], DeliveryTarget],
    ) -> asyncio.Future[JobOutcome]:
        """Store the job with where to deliver it and reserve its images, then queue it; the
        future resolves when this process has finished it.

        `make_target` gets the stored job and the requester's quota status once the images are
        reserved (the result embed shows what is left). Raises a `QuotaError` when they cannot be
        reserved; then nothing is stored or queued. Raises `DuplicateJob` while a job with the
        same dedupe key is active.
        """
        request = spec.request
        # A variations job makes `count` relay calls at once (bot/core/jobs/variations.py).
        slots = min(request.count, self._relay_concurrency) if request.variations else 1
        # One transaction: a refused reservation leaves no job behind, and a crash cannot
        # leave a job without its reservation (or the reverse).
        job: JobRecord | None = None
        try:
            async with self._database.transaction() as conn:
                job = await self._store.create(
                    kind=spec.kind,
                    requester_id=spec.requester_id,
                    guild_id=spec.guild_id,
                    channel_id=spec.channel_id,
                    request=spec.stored_request(),
                    parent_job_id=spec.parent_job_id,
                    source_message_id=spec.source_message_id,
                    dedupe_key=spec.dedupe_key,
                    delivery=delivery,
                    relay_slots=slots,
                    conn=conn,
                )
                status = await self._quota.reserve(
                    guild_id=spec.guild_id or DIRECT_MESSAGES,
                    user_id=spec.requester_id,
                    role_ids=spec.role_ids,
                    job_id=job.id,
                    images=request.count,
                    conn=conn,
                    new_job=True,
                )
                # Before the commit makes the job claimable: the runner must know it is this
                # process's own, with its live target, when its pump (or another's) claims it.
                done = self._runner.submit(job, spec, make_target(job, status))
                claim = await self._runner.claim_in(conn)
        except BaseException:
            if job is not None:  # stored and noted, but the transaction did not commit
                self._runner.forget(job.id)
            raise
        # Committed: if the claim left it queued, the pump looks again (other processes see it
        # at their next look).
        self._runner.begin(claim)
        return done

    async def resume_abandoned(self, *, own: bool) -> list[JobRecord]:
        """Queue again the running jobs no live process holds, for this or another process to
        resume; returns them.

        At start (`own`) that includes this instance's earlier run's jobs, before its runner
        claims anything; later rounds (`own=False`) only take jobs whose owner stopped renewing
        the lease, so a second process never takes the jobs a live one is running.
        """
        requeued = await self._store.requeue_abandoned(own=own)
        await self._runner.announce_unannounced(own=own)
        if own:  # at start; later, the bot's expire_reservations loop does this every 5 minutes
            await self._quota.settle_expired()
        if requeued:
            log.info("queued again %d job(s) their process left unfinished", len(requeued))
            self._runner.wake()
        return requeued
