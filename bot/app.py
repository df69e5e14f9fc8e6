"""The bot process: wires settings, storage, the relay client and the job runner to Discord."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from bot.config import Settings
from bot.core.jobs.runner import DeliveryTarget, JobOutcome, JobRunner, JobSpec
from bot.core.quota import DIRECT_MESSAGES, Period, QuotaService, QuotaStatus
from bot.core.relay.client import SeedreamClient
from bot.discord_ui.endpoints import apply_discord_endpoints
from bot.discord_ui.interaction_target import InteractionTarget
from bot.discord_ui.tree import SeedreamTree
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobState, JobStore

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.quota", "cogs.blend", "cogs.edit", "cogs.results")
INTERRUPTED = "The bot restarted before this job finished; nothing was charged. Please try again."


class SeedreamBot(commands.Bot):
    """Owns the long-lived services; cogs reach them through the bot."""

    http_session: aiohttp.ClientSession
    database: Database
    jobs: JobStore
    relay: SeedreamClient
    runner: JobRunner
    quota: QuotaService

    def __init__(self, settings: Settings) -> None:
        apply_discord_endpoints(settings)
        intents = discord.Intents.none()
        intents.guilds = True
        # Replies that ask for an edit (cogs/edit.py). Without the privileged Message Content
        # intent Discord only shows the bot messages that mention it.
        intents.guild_messages = True
        intents.message_content = settings.message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=SeedreamTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self._interrupted: list[JobRecord] = []
        self._background: set[asyncio.Task[Any]] = set()

    async def setup_hook(self) -> None:
        settings = self.settings
        self.http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, settings.relay_concurrency * 4))
        )
        self.database = Database(settings.database_url)
        await self.database.migrate()
        self.jobs = JobStore(self.database)
        self.quota = QuotaService(
            self.database,
            global_default_limit=settings.quota_default_limit,
            default_period=Period(settings.quota_period),
            reservation_ttl=timedelta(seconds=settings.quota_reservation_ttl_seconds),
        )
        self.relay = SeedreamClient(
            self.http_session,
            base_url=settings.image_api_base_url,
            api_key=settings.image_api_key.get_secret_value(),
            model=settings.image_model,
            response_format=settings.image_response_format,
            stream=settings.image_stream,
            timeout=settings.relay_timeout_seconds,
            max_retries=settings.relay_max_retries,
            retry_budget=settings.relay_retry_budget_seconds,
            max_download_bytes=settings.max_download_bytes,
        )
        self.runner = JobRunner(
            self.relay,
            self.jobs,
            concurrency=settings.relay_concurrency,
            per_user_limit=settings.max_jobs_per_user,
            quota=self.quota,
        )
        self._interrupted = await self._settle_interrupted_jobs()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if settings.sync_commands:
            await self.tree.sync()
        if self._interrupted:
            self._spawn(self._tell_interrupted())
        self._spawn(self._expire_reservations_forever())

    async def _settle_interrupted_jobs(self) -> list[JobRecord]:
        """Jobs a crash left queued or running are failed (and refunded) before anything new starts."""
        interrupted = await self.jobs.unfinished()
        for job in interrupted:
            await self.quota.release(job.id, "bot restarted before the job finished")
            await self.jobs.finish(job.id, JobState.FAILED, INTERRUPTED)
        await self.quota.settle_expired()
        if interrupted:
            log.info("settled %d job(s) left unfinished by the last run", len(interrupted))
        return interrupted

    async def _tell_interrupted(self) -> None:
        await self.wait_until_ready()
        for job in self._interrupted:
            if job.channel_id is None:
                continue
            channel = self.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
            try:
                await channel.send(
                    f"<@{job.requester_id}> your job `{job.id}` was interrupted. {INTERRUPTED}",
                    allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.requester_id)]),
                )
            except discord.HTTPException:
                log.warning("could not tell the requester of job %s", job.id, exc_info=True)

    async def _expire_reservations_forever(self, every: float = 300.0) -> None:
        """Reservations of jobs that died with a process stop counting once expired; record that."""
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await self.quota.settle_expired()

    async def start_job(self, interaction: discord.Interaction[Any], spec: JobSpec) -> asyncio.Future[JobOutcome]:
        """Store, reserve quota for, then queue a job whose results go back to this interaction.

        Raises a `QuotaError` (with a message for the member) when the images cannot be reserved;
        then nothing is stored or queued.
        """

        def target(note: str | None) -> DeliveryTarget:
            return InteractionTarget(
                interaction,
                model=self.settings.image_model,
                token_margin=self.settings.interaction_token_margin_seconds,
                quota_note=note,
            )

        return await self.start_job_for(spec, target)

    async def start_job_for(
        self, spec: JobSpec, make_target: Callable[[str | None], DeliveryTarget]
    ) -> asyncio.Future[JobOutcome]:
        """`start_job` for any delivery target (e.g. a plain message's `MessageTarget`).

        `make_target` receives the quota note for the result embed once the images are reserved.
        """
        # One transaction: a refused reservation leaves no job behind, and a crash cannot
        # leave a job without its reservation (or the reverse).
        async with self.database.transaction() as conn:
            job = await self.jobs.create(
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
            status = await self.quota.reserve(
                guild_id=spec.guild_id or DIRECT_MESSAGES,
                user_id=spec.requester_id,
                role_ids=spec.role_ids,
                job_id=job.id,
                images=spec.request.count,
                conn=conn,
            )
        return await self.runner.submit(job, spec, make_target(quota_note(status)))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: messages only matter to the reply flow's listener (cogs/edit.py)."""

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await super().close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if hasattr(self, "runner"):
            await self.runner.shutdown()
        if hasattr(self, "http_session"):
            await self.http_session.close()
        if hasattr(self, "database"):
            await self.database.close()


def quota_note(status: QuotaStatus) -> str | None:
    """What the result embed says about the requester's remaining images."""
    if status.remaining is None:
        return None
    when = "today" if status.period is Period.DAILY else f"this {status.period.noun}"
    return f"{status.remaining} image{'s' if status.remaining != 1 else ''} left {when}"


def create_bot(settings: Settings) -> SeedreamBot:
    return SeedreamBot(settings)
