"""`python -m bot sync [--guild ID]` forces a command sync over REST only and records its hash,
so the next start with SYNC_COMMANDS=auto writes nothing."""

from __future__ import annotations

from bot.app import create_bot
from tests.e2e.test_command_sync import command_writes
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, start_bot
from tests.ops.conftest import Cli, closed_port


def command_puts(fake: StandardDiscord) -> list[str]:
    return [r.path for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]


async def test_sync_writes_the_global_commands_without_the_gateway(cli: Cli, fake_discord: StandardDiscord) -> None:
    result = await cli("sync")
    assert result.code == 0, result.text
    names = {c["name"] for c in fake_discord.global_commands}
    assert {"imagine", "blend", "prefer", "show", "Edit with Seedream"} <= names
    assert result.out.strip() == f"synced {len(fake_discord.global_commands)} commands (global)"
    assert command_puts(fake_discord) == [f"/applications/{fake_discord.app_id}/commands"]
    assert fake_discord.sessions == []
    assert fake_discord.token not in result.text
    assert "voice will NOT be supported" not in result.err


async def test_sync_is_forced_even_when_nothing_changed(cli: Cli, fake_discord: StandardDiscord) -> None:
    assert (await cli("sync")).code == 0
    assert (await cli("sync")).code == 0
    assert command_writes(fake_discord) == 2


async def test_sync_guild_copies_the_global_commands_to_one_server(cli: Cli, fake_discord: StandardDiscord) -> None:
    guild = fake_discord.guild
    result = await cli("sync", "--guild", str(guild.id))
    assert result.code == 0, result.text
    assert result.out.strip().endswith(f"(guild:{guild.id})")
    assert command_puts(fake_discord) == [f"/applications/{fake_discord.app_id}/guilds/{guild.id}/commands"]
    assert "imagine" in {c["name"] for c in fake_discord.guild_commands[guild.id]}
    assert fake_discord.global_commands == []


async def test_sync_to_a_server_the_bot_is_not_in_fails_with_one_line(cli: Cli, fake_discord: StandardDiscord) -> None:
    result = await cli("sync", "--guild", "123456789012345678")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "Discord refused to sync commands to server 123456789012345678 (is the bot in it, invited with the "
        "applications.commands scope?)"]


async def test_a_rejected_token_fails_with_one_line(cli: Cli, env: dict[str, str]) -> None:
    env["DISCORD_TOKEN"] = "wrong-token-value-123"
    result = await cli("sync")
    assert result.code == 1
    assert "Discord rejected DISCORD_TOKEN" in result.err and "Traceback" not in result.err
    assert "wrong-token-value-123" not in result.text


async def test_after_sync_an_auto_start_writes_no_commands(cli: Cli, fake_discord: StandardDiscord,
                                                           relay: FakeRelay, database_url: str) -> None:
    assert (await cli("sync")).code == 0
    assert command_writes(fake_discord) == 1
    async with start_bot(fake_discord, create_bot, image_api_base_url=relay.base_url, image_api_key=relay.api_key,
                         database_url=database_url, sync_commands="auto"):
        pass
    assert command_writes(fake_discord) == 1


async def test_an_unreachable_database_is_one_line_naming_the_setting(cli: Cli, env: dict[str, str],
                                                                      fake_discord: StandardDiscord) -> None:
    env["DATABASE_URL"] = f"postgresql://bot:pg-password-789@127.0.0.1:{closed_port()}/seedream"
    result = await cli("sync")
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line.startswith("cannot reach the database at 127.0.0.1:") and "(DATABASE_URL)" in line
    assert "pg-password-789" not in result.text
    assert command_writes(fake_discord) == 0
