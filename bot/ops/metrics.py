"""The bot's Prometheus metrics (METRICS_PORT), and the hooks that feed them.

Each bot owns a private `CollectorRegistry`, not prometheus-client's global one, so several
bots in one process (the tests, the in-process bench) never register a name twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.core.jobs.delivery import JobOutcome
from bot.core.quota.errors import QuotaError

T = TypeVar("T")

log = logging.getLogger(__name__)

# A Seedream image takes seconds to minutes; a set of 15 at 4K can take several.
RELAY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class BotMetrics:
    """Every `seedream_*` metric of one bot process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.jobs = Counter("seedream_jobs_total", "Jobs that ended, by kind and final state.",
                            ["kind", "state"], registry=registry)
        self.images_delivered = Counter("seedream_images_delivered_total", "Images posted to Discord.",
                                        registry=registry)
        self.relay_seconds = Histogram("seedream_relay_request_seconds",
                                       "Duration of one relay generation request, first byte to last image.",
                                       buckets=RELAY_BUCKETS, registry=registry)
        self.relay_errors = Counter("seedream_relay_errors_total",
                                    "Relay failures (whole requests and single images), by error class.",
                                    ["class"], registry=registry)
        self.queue_depth = Gauge("seedream_queue_depth", "Jobs in the database waiting to start.",
                                 registry=registry)
        self.queue_wait = Histogram("seedream_queue_wait_seconds",
                                    "Time from a job's submission to the start of its generation.",
                                    buckets=WAIT_BUCKETS, registry=registry)
        self.quota_refusals = Counter("seedream_quota_refusals_total",
                                      "Requests refused because the member's or server's quota had no room.",
                                      registry=registry)
        self.discord_rate_limits = Counter("seedream_discord_rate_limits_total",
                                           "HTTP 429 answers from Discord's REST API.", registry=registry)
        self.discord_requests = Counter("seedream_discord_requests_total",
                                        "Requests made to Discord's REST API (webhooks included), by method.",
                                        ["method"], registry=registry)
        self.database_statements = Counter("seedream_database_statements_total",
                                           "SQL statements sent to the database (BEGIN and COMMIT excluded).",
                                           registry=registry)
        self.delivery_fallbacks = Counter("seedream_delivery_fallbacks_total",
                                          "Result messages posted in the channel because the interaction "
                                          "token had expired.", registry=registry)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)

    # -- jobs ---------------------------------------------------------------------------------

    async def count_refusal(self, submitting: Awaitable[T]) -> T:
        """Await a job's submission; a `QuotaError` is counted as a quota refusal."""
        try:
            return await submitting
        except QuotaError:
            self.quota_refusals.inc()
            raise

    def job_ended(self, outcome: JobOutcome) -> None:
        """Count a job's end (the runner calls it for every job it settles, resumed ones included)."""
        job = outcome.job
        self.jobs.labels(kind=job.kind, state=str(job.state)).inc()
        self.images_delivered.inc(outcome.delivered)
        if job.started_at is not None:
            self.queue_wait.observe(max(0.0, (job.started_at - job.created_at).total_seconds()))

    # -- relay, Discord, delivery -------------------------------------------------------------

    def relay_request(self, seconds: float) -> None:
        self.relay_seconds.observe(seconds)

    def relay_error(self, error: BaseException) -> None:
        """Count a relay failure by its class (`RateLimited`, `ContentBlocked`, …)."""
        self.relay_errors.labels(type(error).__name__).inc()

    def delivery_fallback(self) -> None:
        """A result went to the channel instead of the interaction (its token had expired)."""
        self.delivery_fallbacks.inc()

    def count_statements(self, engine: Engine) -> None:
        """Count every statement `engine` sends (the figure the performance bench reports per job)."""
        statements = self.database_statements

        def before_cursor_execute(*_args: object) -> None:
            statements.inc()

        event.listen(engine, "before_cursor_execute", before_cursor_execute)

    def discord_trace(self) -> aiohttp.TraceConfig:
        """Given to discord.py as `http_trace`: counts each request to Discord's REST API, and each 429."""
        trace = aiohttp.TraceConfig()

        async def on_request_start(_session: aiohttp.ClientSession, _context: object,
                                   params: aiohttp.TraceRequestStartParams) -> None:
            self.discord_requests.labels(params.method).inc()

        async def on_request_end(_session: aiohttp.ClientSession, _context: object,
                                 params: aiohttp.TraceRequestEndParams) -> None:
            if params.response.status == 429:
                self.discord_rate_limits.inc()

        trace.on_request_start.append(on_request_start)
        trace.on_request_end.append(on_request_end)
        return trace
