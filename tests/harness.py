"""pytest-facing helpers: a fake Discord with the standard test guild, and bots started against it.

    async def test_ping(fake_discord):                 # fixture (import it or use running_fake)
        async with start_bot(fake_discord, create_bot):
            interaction = await fake_discord.slash("ping")
            reply = await interaction.wait_response()
            assert reply.content == "pong"

The fake and its actions (`slash`, `autocomplete`, `context_menu`, `click`, `submit_modal`,
`user_message`, `wait_for*`, `fail_next`, `advance_clock`) live in tests/fakes/fake_discord.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.config import Settings, load_settings
from bot.core.jobs.naming import image_index
from bot.storage.jobs import JobRecord, JobStore
from tests.fakes.discord_state import MANAGE_GUILD, Channel, Guild, Role, User
from tests.fakes.fake_discord import FakeDiscord

BotT = TypeVar("BotT", bound=discord.Client)


class StandardDiscord(FakeDiscord):
    """A fake Discord holding one guild: #general; roles @everyone, Moderator (Manage Guild), Artist;
    members alice (Artist), mod (Moderator) and the bot. `slash()` and friends default to alice in #general.
    """

    guild: Guild
    general: Channel
    everyone: Role
    moderator: Role
    artist: Role
    alice: User
    mod: User

    def __init__(self, *, premium_tier: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guild = self.add_guild("Seedream Test Guild", premium_tier=premium_tier, owner=self.owner)
        self.general = self.add_channel(self.guild, "general")
        self.everyone = self.guild.everyone
        self.moderator = self.add_role(self.guild, "Moderator", permissions=MANAGE_GUILD)
        self.artist = self.add_role(self.guild, "Artist")
        self.alice = self.add_user("alice")
        self.mod = self.add_user("mod")
        self.add_member(self.guild, self.owner)
        self.add_member(self.guild, self.alice, roles=[self.artist])
        self.add_member(self.guild, self.mod, roles=[self.moderator])
        self.default_user, self.default_channel = self.alice, self.general


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[StandardDiscord]:
    """Start a StandardDiscord on 127.0.0.1 (random port) and close it afterwards."""
    async with StandardDiscord(**kwargs) as fake:
        yield fake


@pytest.fixture
async def fake_discord() -> AsyncIterator[StandardDiscord]:
    async with running_fake() as fake:
        yield fake


def bot_settings(fake: FakeDiscord, **overrides: Any) -> Settings:
    """Settings pointing the bot at the fake; `overrides` use Settings field names."""
    values: dict[str, Any] = {
        "discord_token": fake.token, "image_api_key": "test-image-key",
        "discord_api_base_url": fake.api_base, "discord_gateway_url": fake.gateway_url,
    }
    return load_settings(**{**values, **overrides})


@contextlib.asynccontextmanager
async def start_bot(fake: FakeDiscord, bot_factory: Callable[[Settings], BotT], *,
                    wait_for_commands: bool | None = None, startup_timeout: float = 10.0,
                    **settings_overrides: Any) -> AsyncIterator[BotT]:
    """Build the bot from settings aimed at `fake`, run `bot.start()` in a task, and yield it once ready.

    Ready means: every fake guild is in the bot's cache (GUILD_CREATE processed; this is before
    on_ready's guild_ready_timeout) and, when `wait_for_commands` (default: settings.sync_commands),
    the fake holds synced commands. A bot that crashes while starting re-raises here. On exit the
    bot is closed, its task ended, and discord.py's Route.BASE / DEFAULT_GATEWAY restored.
    Without a `database_url` override each start gets a fresh SQLite file.
    """
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    with tempfile.TemporaryDirectory(prefix="fake-discord-bot-") as scratch:
        settings_overrides.setdefault("database_url", f"sqlite:///{Path(scratch) / 'bot.db'}")
        settings = bot_settings(fake, **settings_overrides)
        task: asyncio.Task[None] | None = None
        bot: BotT | None = None
        try:
            bot = bot_factory(settings)
            task = asyncio.create_task(bot.start(fake.token), name="fake-discord-bot")
            started = bot

            def has_guilds() -> bool:
                return task.done() or all(started.get_guild(g) for g in fake.guilds)

            await fake.wait_for(has_guilds, startup_timeout, what="the bot to receive its guilds")
            if wait_for_commands if wait_for_commands is not None else settings.sync_commands != "false":
                await fake.wait_for(lambda: task.done() or bool(fake.commands), startup_timeout,
                                    what="the bot to sync its commands")
            if task.done():
                task.result()  # re-raise the start-up error
                raise RuntimeError("the bot stopped while starting")
            yield bot
        finally:
            if bot is not None:
                await bot.close()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


def posted_images(fake: StandardDiscord, job_id: str) -> Counter[int]:
    """How many times each image of the job (0-based index) is visible in #general: exactly once
    each is what every crash and restart must leave."""
    seen: Counter[int] = Counter()
    for message in fake.messages(fake.general):
        for filename, _ in message.files:
            index = image_index(filename, job_id)
            if index is not None:
                seen[index] += 1
    return seen


async def settled(jobs: JobStore, job_id: str, timeout: float = 10.0) -> JobRecord:
    """The job once its end is in the database. Discord shows a job's last message a moment
    before the transaction that records it (and its charge) commits: a test that reads the
    database after seeing the summary waits for this first."""
    async def ended() -> JobRecord:
        while True:
            job = await jobs.get(job_id)
            if job is not None and job.state.finished and job.announced:
                return job
            await asyncio.sleep(0.01)

    try:
        return await asyncio.wait_for(ended(), timeout)
    except TimeoutError:
        raise AssertionError(f"job {job_id} was not settled in the database within {timeout}s") from None


async def idle(jobs: JobStore, timeout: float = 10.0) -> None:
    """Until no job is queued or running in the database (see `settled`)."""
    async def drained() -> None:
        while await jobs.unfinished():  # noqa: ASYNC110 (the database has no event to wait on)
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(drained(), timeout)
    except TimeoutError:
        raise AssertionError(f"jobs were still unfinished in the database after {timeout}s") from None
