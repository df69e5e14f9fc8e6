"""The bot process: wires settings, storage, the relay client and the job runner to Discord."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord.ext import commands, tasks

from bot.config import Settings, instance_name
from bot.core.jobs.delivery import DeliveryTarget, JobOutcome
from bot.core.jobs.runner import JobRunner
from bot.core.jobs.service import JobService
from bot.core.jobs.spec import JobSpec
from bot.core.jobs.variations import RelayGate
from bot.core.quota import Period, QuotaService, QuotaStatus
from bot.core.relay.client import SeedreamClient
from bot.discord_ui.deliveries import InteractionDelivery, MessageDelivery
from bot.discord_ui.endpoints import apply_discord_endpoints
from bot.discord_ui.identify_pacing import IdentifyPacer
from bot.discord_ui.rendering import quota_note
from bot.discord_ui.restore import DiscordRestorer, delivery_target
from bot.discord_ui.translator import CatalogTranslator
from bot.discord_ui.tree import SeedreamTree
from bot.discord_ui.webhook_posts import no_blind_follow_up_retries
from bot.ops import interpreter
from bot.ops.command_sync import sync_commands
from bot.ops.health_server import OpsServer, serve_ops
from bot.ops.metered_relay import MeteredGenerator
from bot.ops.metrics import BotMetrics
from bot.storage.command_sync import CommandSyncStore
from bot.storage.database import Database
from bot.storage.jobs import JobRecord, JobStore
from bot.storage.member_preferences import PreferenceStore

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.prefer", "cogs.quota", "cogs.blend", "cogs.edit", "cogs.results", "cogs.show")


class SeedreamBot(commands.AutoShardedBot):
    """Owns the long-lived services; cogs reach them through the bot.

    Sharded: connects `SHARD_IDS` of `SHARD_COUNT` gateway shards (default: all of Discord's
    recommended count); REST, and so any job's delivery, works from any process.
    """

    http_session: aiohttp.ClientSession
    database: Database
    jobs: JobStore
    relay: SeedreamClient
    runner: JobRunner
    quota: QuotaService
    preferences: PreferenceStore
    job_service: JobService

    def __init__(self, settings: Settings) -> None:
        apply_discord_endpoints(settings)
        intents = discord.Intents.none()
        intents.guilds = True
        # Replies that ask for an edit (cogs/edit.py). Without the privileged Message Content
        # intent Discord only shows the bot messages that mention it.
        intents.guild_messages = True
        intents.message_content = settings.message_content_intent
        self.metrics = BotMetrics()
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=SeedreamTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            # No message cache: nothing here reads it (a reply carries the message it answers,
            # an interaction its own), and with it every MESSAGE_UPDATE (each result's edit)
            # searched up to 1,000 cached messages and parsed the message twice.
            max_messages=None,
            shard_count=settings.shard_count,
            # None (every shard) is what discord.py defaults to; its stubs only spell the list.
            shard_ids=list(settings.shard_slice) if settings.shard_slice is not None else None,  # type: ignore[arg-type]
            http_trace=no_blind_follow_up_retries(self.metrics.discord_trace()),
        )
        self.settings = settings
        self._stopping: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self.ops_server: OpsServer | None = None
        self._closed: asyncio.Future[None] | None = None
        self._identify_pacer = IdentifyPacer(self.fetch_session_start_limits)
        self._interpreter_before: interpreter.Previous | None = None  # until setup_hook tunes it

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """IDENTIFY as fast as Discord's session start limit allows (not a flat 5 s per shard)."""
        await self._identify_pacer.wait(shard_id)

    async def launch_shards(self) -> None:
        """Take the recommended shard count from Discord but keep a `DISCORD_GATEWAY_URL` override.

        discord.py would connect to the URL `GET /gateway/bot` names whenever it asks it for the
        count, bypassing a gateway proxy.
        """
        if self.shard_count is None and self.settings.discord_gateway_url:
            self.shard_count, _, _ = await self.http.get_bot_gateway()
        await super().launch_shards()

    async def setup_hook(self) -> None:
        settings = self.settings
        self.http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, settings.relay_concurrency * 4))
        )
        self.database = Database(settings.database_url)
        await self.database.migrate()
        self.metrics.count_statements(self.database.engine.sync_engine)
        self.ops_server = await serve_ops(self, self.metrics, self.database, settings.metrics_port)
        self.jobs = JobStore(
            self.database, owner=instance_name(settings), lease=timedelta(seconds=settings.job_lease_seconds)
        )
        self.preferences = PreferenceStore(self.database)
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
            result_url_hosts=settings.result_hosts,
        )
        self.runner = JobRunner(
            RelayGate(MeteredGenerator(self.relay, self.metrics), limit=settings.relay_concurrency),
            self.jobs,
            concurrency=settings.relay_concurrency,
            per_user_limit=settings.max_jobs_per_user,
            quota=self.quota,
            restorer=DiscordRestorer(self, self.http_session, settings, self.jobs),
            max_attempts=settings.job_max_attempts,
            on_ended=self.metrics.job_ended,
        )
        self.job_service = JobService(self.database, self.jobs, self.quota, self.runner,
                                      relay_concurrency=settings.relay_concurrency)
        # This instance's earlier run's jobs go back in the queue before anything is claimed.
        await self.job_service.resume_abandoned(own=True)
        await self.install_commands()
        if settings.sync_commands != "false":
            await sync_commands(self.tree, CommandSyncStore(self.database), force=settings.sync_commands == "true")
        self.expire_reservations.start()
        self.renew_leases.change_interval(seconds=settings.job_lease_seconds / 3)
        self.renew_leases.start()
        self._install_signal_handlers()
        self._spawn(self._run_queue())
        # Start-up done: what it built is frozen out of the collector (about 9 % of a job's CPU
        # in the 100 burst), and the collector and the GIL tuned for the bursts to come.
        self._interpreter_before = interpreter.tune()

    async def _run_queue(self) -> None:
        """Claim jobs once the gateway is up (resumed jobs may need the bot's own user)."""
        await self.wait_until_ready()
        self.runner.start()

    async def install_commands(self) -> None:
        """The command tree, as it is synced (`python -m bot sync` builds it the same way)."""
        await self.tree.set_translator(CatalogTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)

    def _install_signal_handlers(self) -> None:
        """SIGTERM (docker stop; Python as PID 1 ignores it without a handler): shut down gently."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError):  # no signals here (Windows, or not the main thread)
            log.debug("SIGTERM handler not installed", exc_info=True)

    def _on_sigterm(self) -> None:
        if self._stopping is not None:  # the second one: stop waiting for running jobs
            log.info("second SIGTERM: closing now")
            self._hurry.set()
            return
        log.info("SIGTERM: starting no new jobs; waiting up to %.0fs for running ones",
                 self.settings.shutdown_grace_seconds)
        self._stopping = asyncio.create_task(self._stop_gently())

    async def _stop_gently(self) -> None:
        drained = asyncio.ensure_future(self.runner.drain(self.settings.shutdown_grace_seconds))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait({drained, hurry}, return_when=asyncio.FIRST_COMPLETED)
        if not (drained.done() and drained.result()):
            log.info("shutting down with jobs still running: they are settled at the next start")
        drained.cancel()
        hurry.cancel()
        await self.close()

    @tasks.loop(minutes=5)
    async def expire_reservations(self) -> None:
        """Reservations of jobs that died with a process stop counting once expired; record that."""
        try:
            await self.quota.settle_expired()
        except Exception:  # the next round tries again; the log says why this one failed
            log.exception("settling expired quota reservations failed")

    @tasks.loop(seconds=10)
    async def renew_leases(self) -> None:
        """Keep this process's job leases alive; queue again the jobs of processes that stopped doing
        so; free the kept images of jobs that have ended."""
        try:
            await self.jobs.heartbeat()
            await self.job_service.resume_abandoned(own=False)
        except Exception:  # the next round tries again; the log says why this one failed
            log.exception("renewing job leases failed")
        try:
            await self.jobs.drop_finished_results()
        except Exception:
            log.exception("freeing the kept images of ended jobs failed")

    async def start_job(
        self, asked: discord.Interaction[Any] | discord.Message, spec: JobSpec
    ) -> asyncio.Future[JobOutcome]:
        """Store, reserve quota for, then queue a job; its results go back where it was `asked`.

        Raises a `QuotaError` (with a message for the member) when the images cannot be reserved;
        then nothing is stored or queued.
        """
        delivery = (MessageDelivery.from_message(asked) if isinstance(asked, discord.Message)
                    else InteractionDelivery.from_interaction(asked))

        def target(job: JobRecord, status: QuotaStatus) -> DeliveryTarget:
            return delivery_target(self, self.settings, delivery, store=self.jobs, job_id=job.id,
                                   quota_note=quota_note(status))

        return await self.metrics.count_refusal(self.job_service.submit(spec, delivery.to_json(), target))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: messages only matter to the reply flow's listener (cogs/edit.py)."""

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Close once; every caller (SIGTERM, the start-up loop, tests) waits until it is complete."""
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._close_once())
        await asyncio.shield(self._closed)

    async def _close_once(self) -> None:
        self.expire_reservations.cancel()
        self.renew_leases.cancel()
        if hasattr(self, "runner"):  # jobs still running go back to the queue before Discord closes
            await self.runner.shutdown()
        await super().close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.ops_server is not None:
            await self.ops_server.close()
        if hasattr(self, "http_session"):
            await self.http_session.close()
        if hasattr(self, "database"):
            await self.database.close()
        if self._interpreter_before is not None:
            interpreter.restore(self._interpreter_before)
            self._interpreter_before = None


def create_bot(settings: Settings) -> SeedreamBot:
    return SeedreamBot(settings)
