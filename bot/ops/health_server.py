"""`/metrics` and `/healthz` on METRICS_PORT, and the task that keeps the queue-depth gauge fresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import discord
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.ops.metrics import BotMetrics
from bot.storage.database import Database
from bot.storage.job_counts import queued_jobs
from bot.storage.probe import database_answers

log = logging.getLogger(__name__)


def gateway_connected(client: discord.Client) -> bool:
    """Ready, not closed, and its gateway websockets open (False while discord.py reconnects);
    a sharded bot needs every shard it runs connected."""
    if not client.is_ready() or client.is_closed():
        return False
    if isinstance(client, discord.AutoShardedClient):
        shards = client.shards.values()
        return bool(shards) and all(not shard.is_closed() for shard in shards)  # closed: its websocket is
    socket = client.ws
    return socket is not None and socket.open


async def serve_ops(client: discord.Client, metrics: BotMetrics, database: Database,
                    port: int | None) -> OpsServer | None:
    """Start the endpoints for `client` when METRICS_PORT is set (`port`), else None."""
    if port is None:
        return None
    server = OpsServer(metrics, database, lambda: gateway_connected(client), port=port)
    await server.start()
    return server


class OpsServer:
    """The operator's HTTP endpoints. `/healthz` is 200 only while the gateway is connected
    (`gateway_connected()`) and the database answers `SELECT 1` within `database_timeout`."""

    def __init__(self, metrics: BotMetrics, database: Database, gateway_connected: Callable[[], bool], *,
                 port: int, host: str = "0.0.0.0", database_timeout: float = 3.0,  # noqa: S104 (scraped from outside)
                 queue_interval: float = 15.0) -> None:
        self._metrics = metrics
        self._database = database
        self._gateway_connected = gateway_connected
        self._host = host
        self._database_timeout = database_timeout
        self._queue_interval = queue_interval
        self.port = port
        self._runner: web.AppRunner | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("metrics and health on port %d (/metrics, /healthz)", self.port)
        self._refresher = asyncio.create_task(self._refresh_queue_depth(), name="queue-depth")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self) -> str | None:
        """None when healthy, else the short reason /healthz answers 503 with."""
        if not self._gateway_connected():
            return "Discord gateway not connected"
        try:
            await asyncio.wait_for(database_answers(self._database), self._database_timeout)
        except Exception as error:  # any failure to answer is unhealthy; the reason is logged once per probe
            log.warning("health check: the database did not answer: %s", type(error).__name__)
            return "database not answering"
        return None

    async def _serve_health(self, _request: web.Request) -> web.Response:
        reason = await self.health()
        if reason is None:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=reason + "\n")

    async def _serve_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _refresh_queue_depth(self) -> None:
        while True:
            try:
                self._metrics.queue_depth.set(await queued_jobs(self._database))
            except Exception as error:  # the next round tries again
                log.warning("could not count queued jobs: %s", type(error).__name__)
            await asyncio.sleep(self._queue_interval)
