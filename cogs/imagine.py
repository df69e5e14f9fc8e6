"""/imagine: text-to-image and image sets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bot.discord_ui.cog import BotCog
from bot.discord_ui.slash_jobs import SIZE_HELP, generate, size_autocomplete

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Imagine(BotCog):
    # The decorators are the command's public interface (name, options, descriptions); /imagine and
    # /blend spell theirs out side by side on purpose and share everything after them (slash_jobs).
    @app_commands.command(name="imagine")
    @app_commands.autocomplete(size=size_autocomplete)
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw",
        size=SIZE_HELP,
        count="How many images, 1–15; more than one makes a consistent set",
        watermark="Add the small 'AI generated' mark",
        reference="An image to edit or take from (JPEG, PNG, WebP…, at most 10 MB)",
        mode="set: one consistent set (default); variations: independent takes to pick from",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[SeedreamBot],
        prompt: str,
        size: str | None = None,
        count: app_commands.Range[int, 1, 15] | None = None,
        watermark: bool | None = None,
        reference: discord.Attachment | None = None,
        mode: Literal["set", "variations"] = "set",
    ) -> None:
        """Generate images with Seedream 4.0."""
        attachments = [reference] if reference else []
        await generate(interaction, kind="imagine", prompt=prompt, attachments=attachments, size=size,
                       count=count, watermark=watermark, variations=mode == "variations")


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Imagine(bot))
