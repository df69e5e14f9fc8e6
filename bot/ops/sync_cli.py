"""`python -m bot sync [--guild ID]`: sync the slash commands now, over REST only.

The bot logs in (REST: no gateway connection), builds its command tree exactly as at start,
and syncs it whatever the stored hash says; the hash is then recorded as auto sync records
it, so the next start with SYNC_COMMANDS=auto sends nothing. `--guild` copies the global
commands to one server and syncs there (they appear at once: handy while developing).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp
import discord
from sqlalchemy.exc import SQLAlchemyError

from bot.app import SeedreamBot
from bot.config import ConfigError, Settings, load_settings
from bot.ops.command_sync import scope_name, sync_commands
from bot.ops.doctor_database import where
from bot.ops.settings import quiet_logging, redact, secret_values
from bot.storage.command_sync import CommandSyncStore
from bot.storage.database import Database


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sync", help="sync the slash commands now (global, or one server)",
                                 description="Sync the slash commands now, over REST only, and record them so the "
                                 "next start with SYNC_COMMANDS=auto sends nothing.")
    parser.add_argument("--guild", type=int, metavar="ID", help="copy the global commands to this server and "
                        "sync them there (development)")
    parser.set_defaults(run=run)


class SyncFailed(Exception):
    """One line for the operator."""


class CommandsOnly(SeedreamBot):
    """The bot with its command tree and database, and none of its job machinery."""

    async def setup_hook(self) -> None:
        url = self.settings.database_url
        self.database = Database(url)
        try:
            await self.database.migrate()  # the synced hash is stored in the database
        except (OSError, SQLAlchemyError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise SyncFailed(f"cannot reach the database at {where(url)} (DATABASE_URL): {reason}") from None
        await self.install_commands()


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"Configuration error: {error}. Set it in the environment or in .env (see README).", file=sys.stderr)
        return 2
    quiet_logging(settings)
    try:
        line = asyncio.run(sync(settings, args.guild))
    except SyncFailed as error:
        print(redact(str(error), secret_values(settings)), file=sys.stderr)
        return 1
    print(line)
    return 0


async def sync(settings: Settings, guild_id: int | None) -> str:
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # the bot has no voice
    bot = CommandsOnly(settings)
    guild = discord.Object(guild_id) if guild_id is not None else None
    try:
        await bot.login(settings.discord_token.get_secret_value())
        await sync_commands(bot.tree, CommandSyncStore(bot.database), guild=guild, force=True)
        count = len(bot.tree.get_commands(guild=guild))  # before close(), which unloads the cogs
    except discord.LoginFailure:
        raise SyncFailed("Discord rejected DISCORD_TOKEN. Check the bot token in the Developer Portal.") from None
    except discord.Forbidden:
        target = f"server {guild_id}" if guild_id else "the application"
        raise SyncFailed(f"Discord refused to sync commands to {target} (is the bot in it, invited with the "
                         "applications.commands scope?)") from None
    except discord.HTTPException as error:
        raise SyncFailed(f"Discord refused the sync: HTTP {error.status} {error.text}") from None
    except (aiohttp.ClientError, OSError) as error:
        raise SyncFailed(f"cannot reach Discord at {settings.discord_api_base_url} (DISCORD_API_BASE_URL): "
                         f"{error}") from None
    finally:
        await bot.close()
    return f"synced {count} commands ({scope_name(guild)})"
