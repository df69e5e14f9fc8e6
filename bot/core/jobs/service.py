"""Starting a job and settling the jobs a crash left behind: the transactions around the runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core.i18n import tr
from bot.core.jobs.delivery import DeliveryTarget, JobOutcome
from bot.core.jobs.runner import JobRunner
from bot.core.jobs.spec import JobSpec
from bot.core.quota import DIRECT_MESSAGES, QuotaService, QuotaStatus
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobState, JobStore

log = logging.getLogger(__name__)

INTERRUPTED = tr("The bot restarted before this job finished; nothing was charged. Please try again.")


class JobService:
    def __init__(self, database: Database, store: JobStore, quota: QuotaService, runner: JobRunner) -> None:
        self._database = database
        self._store = store
        self._quota = quota
        self._runner = runner

    async def submit(
        self, spec: JobSpec, make_target: Callable[[QuotaStatus], DeliveryTarget]
    ) -> asyncio.Future[JobOutcome]:
        """Store the job and reserve its images, then queue it; the future resolves when it ends.

        `make_target` gets the requester's quota status once the images are reserved (the result
        embed shows what is left). Raises a `QuotaError` when they cannot be reserved; then nothing
        is stored or queued. Raises `DuplicateJob` while a job with the same dedupe key is active.
        """
        # One transaction: a refused reservation leaves no job behind, and a crash cannot
        # leave a job without its reservation (or the reverse).
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
                conn=conn,
            )
            status = await self._quota.reserve(
                guild_id=spec.guild_id or DIRECT_MESSAGES,
                user_id=spec.requester_id,
                role_ids=spec.role_ids,
                job_id=job.id,
                images=spec.request.count,
                conn=conn,
            )
        return await self._runner.submit(job, spec, make_target(status))

    async def settle_interrupted(self, *, own: bool = True) -> list[JobRecord]:
        """Fail (and refund) the jobs no live process owns; returns those this call settled.

        At start (`own`) that includes this instance's earlier run's jobs, before anything new
        starts; later rounds (`own=False`) only take jobs whose owner stopped renewing the lease,
        so a second process never fails the jobs a live one is running.
        """
        settled = []
        for job in await self._store.abandoned(own=own):
            async with self._database.transaction() as conn:
                # The state change decides: of two processes settling one job, one wins.
                if not await self._store.finish(job.id, JobState.FAILED, str(INTERRUPTED), conn=conn):
                    continue
                await self._quota.release(job.id, "bot restarted before the job finished", conn=conn)
            settled.append(job)
        if own:  # at start; later, the bot's expire_reservations loop does this every 5 minutes
            await self._quota.settle_expired()
        if settled:
            log.info("settled %d job(s) their process left unfinished", len(settled))
        return settled
