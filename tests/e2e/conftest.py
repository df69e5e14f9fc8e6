"""End-to-end world: the real bot, a fake Discord and a fake relay, all on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import SeedreamBot, create_bot
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, start_bot


@dataclass
class World:
    discord: StandardDiscord
    relay: FakeRelay
    bot: SeedreamBot
    database_url: str

    async def imagine(self, **options: Any) -> Any:
        user = options.pop("user", None)
        age = options.pop("age", None)
        extra = {"age": age} if age is not None else {}
        return await self.discord.slash("imagine", options, user=user, **extra)

    async def generate(self, asked: Any) -> Any:
        """Press Generate on the private question a big request (CONFIRM_AT_IMAGES) is answered with;
        returns the click, the interaction that then runs the job."""
        question = await asked.wait_response()
        buttons = [c for row in question.components for c in row.get("components", []) if c.get("type") == 2]
        generate = next(c for c in buttons if c.get("label") == "Generate")
        return await self.discord.click(question, str(generate["custom_id"]), user=asked.user)


BotStarter = Callable[..., contextlib.AbstractAsyncContextManager[SeedreamBot]]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def boot(fake_discord: StandardDiscord, relay: FakeRelay, database_url: str) -> BotStarter:
    """`async with boot(**settings) as bot:` starts the real bot against the fakes (restartable)."""

    def starter(**overrides: Any) -> contextlib.AbstractAsyncContextManager[SeedreamBot]:
        settings: dict[str, Any] = {
            "image_api_base_url": relay.base_url,
            "image_api_key": relay.api_key,
            "database_url": database_url,
            "relay_max_retries": 0,
        }
        settings.update(overrides)
        return start_bot(fake_discord, create_bot, **settings)

    return starter


@pytest.fixture
async def world(boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay,
                database_url: str) -> AsyncIterator[World]:
    async with boot() as bot:
        yield World(fake_discord, relay, bot, database_url)
