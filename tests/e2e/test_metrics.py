"""METRICS_PORT: /metrics after real /imagine runs through the fakes, and /healthz following the gateway."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.database import async_url
from tests.conftest import POSTGRES_URL, require_postgres
from tests.e2e.test_imagine import finished
from tests.e2e.test_quota import refusal
from tests.fakes.fake_relay import ark_error

NAMES = (
    "seedream_jobs_total", "seedream_images_delivered_total", "seedream_relay_request_seconds",
    "seedream_relay_errors_total", "seedream_queue_depth", "seedream_queue_wait_seconds",
    "seedream_quota_refusals_total", "seedream_discord_rate_limits_total", "seedream_delivery_fallbacks_total",
)


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def counted(fake, bot, jobs: int) -> None:
    """Until the bot has counted `jobs` finished jobs (its summary edit comes just before that)."""
    def total() -> bool:
        return sum(v for (name, _), v in samples(bot.metrics.render().decode()).items()
                   if name == "seedream_jobs_total") >= jobs
    await fake.wait_for(total, 10, what=f"{jobs} job(s) counted")


async def test_metrics_count_jobs_images_relay_errors_quota_refusals_and_discord_429s(boot, fake_discord, relay):
    async with boot(metrics_port=0, quota_default_limit=1) as bot:
        assert bot.ops_server is not None
        port = bot.ops_server.port

        relay.fail_next(500, ark_error("InternalServiceError"))
        failed = await finished(await fake_discord.slash("imagine", {"prompt": "a castle"}))
        assert failed.content.startswith("❌")
        await counted(fake_discord, bot, 1)

        fake_discord.fail_next("PATCH", r"^/webhooks/", 429)  # one progress edit is rate limited, then retried
        done = await finished(await fake_discord.slash("imagine", {"prompt": "a lighthouse"}))
        assert done.content.startswith("✅")
        await counted(fake_discord, bot, 2)

        refused = await refusal(await fake_discord.slash("imagine", {"prompt": "one more"}))
        assert "You have used your 1 image" in refused

        status, content_type, text = await get(port, "/metrics")

    assert status == 200 and content_type.startswith("text/plain; version=")
    for name in NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    found = samples(text)
    assert value(found, "seedream_jobs_total", kind="imagine", state="failed") == 1
    assert value(found, "seedream_jobs_total", kind="imagine", state="delivered") == 1
    assert value(found, "seedream_images_delivered_total") == 1
    assert value(found, "seedream_relay_errors_total", **{"class": "ServerError"}) == 1
    assert value(found, "seedream_relay_request_seconds_count") == 2
    assert value(found, "seedream_queue_wait_seconds_count") == 2
    assert value(found, "seedream_quota_refusals_total") == 1
    assert value(found, "seedream_discord_rate_limits_total") == 1
    assert value(found, "seedream_delivery_fallbacks_total") == 0
    assert value(found, "seedream_queue_depth") == 0


async def test_two_bots_in_one_process_keep_their_own_numbers(boot, fake_discord):
    async with boot(metrics_port=0) as first:
        await finished(await fake_discord.slash("imagine", {"prompt": "a fox"}))
        await counted(fake_discord, first, 1)
        first_text = first.metrics.render().decode()
    async with boot(metrics_port=0) as second:
        second_text = second.metrics.render().decode()
    assert value(samples(first_text), "seedream_images_delivered_total") == 1
    assert value(samples(second_text), "seedream_images_delivered_total") == 0


async def test_healthz_is_ok_while_connected_and_503_once_the_gateway_is_gone(boot, fake_discord):
    async with boot(metrics_port=0) as bot:
        assert bot.ops_server is not None
        port = bot.ops_server.port
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        assert await get(port, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")

        await fake_discord.close()  # Discord goes away: discord.py keeps trying to reconnect
        await fake_discord.wait_for(lambda: bot.ws is None or not bot.ws.open, 10, what="the gateway to drop")
        status, _, reason = await get(port, "/healthz")
        assert (status, reason) == (503, "Discord gateway not connected\n")
    with socket.socket() as probe:  # closing the bot frees the port
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_no_metrics_port_serves_nothing(world):
    assert world.bot.ops_server is None


@pytest.mark.postgres
async def test_healthz_is_503_once_the_database_stops_answering(boot, fake_discord):
    """A real PostgreSQL database of its own that stops accepting connections mid-run."""
    require_postgres()
    name = f"healthz_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(async_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        async with boot(metrics_port=0, database_url=str(make_url(POSTGRES_URL).set(database=name))) as bot:
            assert bot.ops_server is not None
            await asyncio.wait_for(bot.wait_until_ready(), 10)
            assert (await get(bot.ops_server.port, "/healthz"))[0] == 200

            async with admin.connect() as connection:
                await connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
                await connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                              "WHERE datname = :name"), {"name": name})
            status, _, reason = await get(bot.ops_server.port, "/healthz")
            assert (status, reason) == (503, "database not answering\n")
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_results_posted_to_the_channel_after_the_token_expired_count_as_delivery_fallbacks(boot, fake_discord):
    from datetime import timedelta

    async with boot(metrics_port=0) as bot:
        await fake_discord.slash("imagine", {"prompt": "late"}, age=timedelta(minutes=14, seconds=30))
        await fake_discord.wait_for_message(fake_discord.general, lambda m: bool(m.files) and not m.via_webhook)
        found = samples(bot.metrics.render().decode())
    assert value(found, "seedream_delivery_fallbacks_total") == 1
