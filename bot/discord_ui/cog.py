"""The base of the cogs: a cog and the bot it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class BotCog(commands.Cog):
    """Most cogs need nothing else in their constructor."""

    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot
