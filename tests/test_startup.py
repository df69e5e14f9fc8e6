"""Start-up that explains itself: one line naming the address and the setting, and Discord retried until it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.app import SeedreamBot, create_bot
from bot.config import Settings, load_settings
from bot.ops.startup import Backoff, StartupError, check_database, probe_relay, run_bot
from tests.fakes.fake_relay import FakeRelay
from tests.harness import running_fake

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Lines(logging.Handler):
    """Collects the records of one logger; `wait(n)` until n have arrived."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    async def wait(self, count: int, timeout: float = 10.0) -> list[logging.LogRecord]:
        async with asyncio.timeout(timeout):
            while len(self.records) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.records


@pytest.fixture
def startup_lines() -> Any:
    lines = Lines()
    logger = logging.getLogger("bot.ops.startup")
    logger.addHandler(lines)
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield lines
    logger.removeHandler(lines)
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay() as fake:
        yield fake


def settings_for(port: int, tmp_path: Path, relay: FakeRelay, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "fake-bot-token", "image_api_key": relay.api_key, "image_api_base_url": relay.base_url,
        "discord_api_base_url": f"http://127.0.0.1:{port}/api/v10", "discord_gateway_url": f"ws://127.0.0.1:{port}/gw",
        "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    return load_settings(**{**values, **overrides})


def recording_factory() -> tuple[list[SeedreamBot], Callable[[Settings], SeedreamBot]]:
    bots: list[SeedreamBot] = []

    def factory(settings: Settings) -> SeedreamBot:
        bots.append(create_bot(settings))
        return bots[-1]

    return bots, factory


async def test_discord_unreachable_at_start_is_one_line_each_try_until_it_is_back(tmp_path, relay, startup_lines):
    port = free_port()
    settings = settings_for(port, tmp_path, relay)
    bots, factory = recording_factory()
    running = asyncio.create_task(run_bot(settings, factory, backoff=Backoff(first=0.05, cap=0.2)))
    try:
        first, second = (await startup_lines.wait(2))[:2]
        for record in (first, second):
            message = record.getMessage()
            api = f"http://127.0.0.1:{port}/api/v10"
            assert message.startswith(f"cannot reach Discord at {api} (DISCORD_API_BASE_URL): ")
            assert "retrying in" in message and "\n" not in message
            assert record.levelno == logging.WARNING and record.exc_info is None
        assert not running.done()

        async with running_fake(port=port) as fake:  # Discord is back on the same address
            await fake.wait_until_connected(15)
            bot = bots[-1]
            await fake.wait_for(lambda: all(bot.get_guild(g) for g in fake.guilds), 10, what="the guilds")
            await bot.close()
            await asyncio.wait_for(running, 10)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
    assert all(bot.is_closed() for bot in bots)


async def test_an_unreachable_gateway_is_named_and_retried_until_the_bot_is_closed(tmp_path, relay, startup_lines):
    async with running_fake() as fake:
        gateway = f"ws://127.0.0.1:{free_port()}/gw"
        settings = settings_for(fake.port, tmp_path, relay, discord_gateway_url=gateway)
        bots, factory = recording_factory()
        running = asyncio.create_task(run_bot(settings, factory, backoff=Backoff(first=0.05, cap=0.2)))
        try:
            records = await startup_lines.wait(2)
            assert [r.getMessage().split(": ")[0] for r in records[:2]] == [
                f"cannot reach the Discord gateway at {gateway} (DISCORD_GATEWAY_URL)"] * 2
            assert len(bots) == 1  # logged in once; only the gateway is retried
            await bots[0].close()  # what SIGTERM does
            await asyncio.wait_for(running, 10)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running


async def test_an_unreachable_relay_is_a_warning_naming_the_setting(tmp_path, relay, startup_lines):
    base = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings_for(free_port(), tmp_path, relay, image_api_base_url=base)
    assert await probe_relay(settings) is False
    [record] = startup_lines.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"cannot reach the relay at {base} (IMAGE_API_BASE_URL): ")


async def test_a_relay_that_answers_without_a_models_list_is_fine(tmp_path, relay, startup_lines):
    assert await probe_relay(settings_for(free_port(), tmp_path, relay)) is True  # the fake has no /models: 404
    assert startup_lines.records == []


async def test_a_relay_that_rejects_the_key_is_a_warning_naming_the_key(tmp_path, relay, startup_lines):
    seen: list[str] = []

    async def models(request: web.Request) -> web.Response:
        seen.append(request.headers["Authorization"])
        return web.json_response({"error": {"message": "invalid key"}}, status=401)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        assert await probe_relay(settings_for(free_port(), tmp_path, relay, image_api_base_url=base)) is True
    finally:
        await runner.cleanup()
    assert seen == [f"Bearer {relay.api_key}"]
    [record] = startup_lines.records
    assert "rejected IMAGE_API_KEY (HTTP 401)" in record.getMessage() and relay.api_key not in record.getMessage()


async def test_an_unreachable_database_is_one_line_without_its_password():
    port = free_port()
    with pytest.raises(StartupError) as raised:
        await check_database(f"postgresql://seedream:hunter2-secret@127.0.0.1:{port}/seedream", within=5)
    message = str(raised.value)
    assert message.startswith(f"cannot reach the database at 127.0.0.1:{port}/seedream (DATABASE_URL): ")
    assert "hunter2" not in message and "\n" not in message


# -- the process, as an operator starts it ----------------------------------------------------------------------

def bot_env(**env: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}


async def test_python_m_bot_with_the_database_unreachable_exits_1_with_one_line(tmp_path):
    env = bot_env(DISCORD_TOKEN="t-123456", IMAGE_API_KEY="k-123456",
                  DATABASE_URL=f"postgresql://u:pw-secret@127.0.0.1:{free_port()}/db")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "cannot reach the database at 127.0.0.1:" in lines[0] and "(DATABASE_URL)" in lines[0]
    assert "pw-secret" not in err.decode() + out.decode()


async def test_python_m_bot_with_discord_unreachable_keeps_trying_without_a_traceback(tmp_path, relay):
    port = free_port()
    env = bot_env(DISCORD_TOKEN="t-123456", IMAGE_API_KEY=relay.api_key, IMAGE_API_BASE_URL=relay.base_url,
                  DISCORD_API_BASE_URL=f"http://127.0.0.1:{port}/api/v10",
                  DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        lines = [(await asyncio.wait_for(process.stderr.readline(), 60)).decode() for _ in range(2)]
        for line in lines:  # one line per attempt, and nothing else
            assert f"WARNING bot.ops.startup: cannot reach Discord at http://127.0.0.1:{port}/api/v10 " \
                   "(DISCORD_API_BASE_URL): " in line, lines
        assert process.returncode is None  # still running: it retries
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), 30)
    assert "Traceback" not in "".join(lines) + rest.decode()
