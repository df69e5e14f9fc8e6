"""SYNC_COMMANDS=auto writes commands only when the tree changed; true always, false never."""

from __future__ import annotations

import re

import discord
from discord import app_commands

from bot.app import SeedreamBot
from tests.e2e.conftest import BotStarter
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, running_fake, start_bot

COMMAND_WRITE = re.compile(r"^/applications/\d+(/guilds/\d+)?/commands$")


def command_writes(fake: StandardDiscord) -> int:
    return sum(1 for r in fake.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")
               and COMMAND_WRITE.match(r.path.split("?")[0]))


async def test_unchanged_restart_writes_no_commands(boot: BotStarter, fake_discord: StandardDiscord) -> None:
    async with boot():
        pass
    assert command_writes(fake_discord) == 1
    names = {c["name"] for c in fake_discord.global_commands}
    assert "imagine" in names
    async with boot():
        pass
    assert command_writes(fake_discord) == 1
    async with boot(sync_commands="true"):
        pass
    assert command_writes(fake_discord) == 2
    async with boot(sync_commands="false"):
        pass
    assert command_writes(fake_discord) == 2


class BotWithNewCommand(SeedreamBot):
    """The next release of the bot: one more command."""

    async def setup_hook(self) -> None:
        @app_commands.command(name="ping", description="Answers pong")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        self.tree.add_command(ping)
        await super().setup_hook()


async def test_changed_tree_is_synced_again(boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay,
                                            database_url: str) -> None:
    async with boot():
        pass
    assert command_writes(fake_discord) == 1
    async with start_bot(fake_discord, BotWithNewCommand, image_api_base_url=relay.base_url,
                         image_api_key=relay.api_key, database_url=database_url):
        pass
    assert command_writes(fake_discord) == 2
    assert "ping" in {c["name"] for c in fake_discord.global_commands}


async def test_false_never_syncs(boot: BotStarter, fake_discord: StandardDiscord) -> None:
    async with boot(sync_commands="false"):
        pass
    assert command_writes(fake_discord) == 0
    assert fake_discord.global_commands == []


async def test_another_application_on_the_same_database_is_synced(
        boot: BotStarter, fake_discord: StandardDiscord, relay: FakeRelay, database_url: str) -> None:
    async with boot():
        pass
    assert command_writes(fake_discord) == 1
    async with running_fake() as other_application:  # another bot token, the same database
        assert other_application.app_id != fake_discord.app_id
        async with start_bot(other_application, SeedreamBot, image_api_base_url=relay.base_url,
                             image_api_key=relay.api_key, database_url=database_url):
            pass
        assert command_writes(other_application) == 1
        assert "imagine" in {c["name"] for c in other_application.global_commands}
