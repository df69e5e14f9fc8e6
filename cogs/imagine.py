"""/imagine: text-to-image and image sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui.attachments import ReferenceSource, plan_request
from bot.discord_ui.slash_jobs import run_slash_job, size_autocomplete

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Imagine(commands.Cog):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine")
    @app_commands.autocomplete(size=size_autocomplete)
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw",
        size="1K, 2K, 4K or WIDTHxHEIGHT, e.g. 2848x1600",
        count="How many images, 1–15; more than one makes a consistent set",
        watermark="Add the small 'AI generated' mark",
        reference="An image to edit or take from (JPEG, PNG, WebP…, at most 10 MB)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[SeedreamBot],
        prompt: str,
        size: str | None = None,
        count: app_commands.Range[int, 1, 15] = 1,
        watermark: bool | None = None,
        reference: discord.Attachment | None = None,
    ) -> None:
        """Generate images with Seedream 4.0."""
        sources = [ReferenceSource(reference, None, interaction.channel_id)] if reference else []
        request = plan_request(
            self.bot.settings,
            prompt=prompt,
            requester_id=interaction.user.id,
            sources=sources,
            size=size,
            count=count,
            watermark=watermark,
        )
        await interaction.response.defer(thinking=True)
        await run_slash_job(interaction, kind="imagine", request=request, sources=sources)


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Imagine(bot))
