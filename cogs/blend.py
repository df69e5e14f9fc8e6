"""/blend: new images from 2–6 reference images, in the order given."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.discord_ui.cog import BotCog
from bot.discord_ui.slash_jobs import SIZE_HELP, generate, size_autocomplete

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Blend(BotCog):
    # The decorators are the command's public interface (name, options, descriptions); /imagine and
    # /blend spell theirs out side by side on purpose and share everything after them (slash_jobs).
    @app_commands.command(name="blend")
    @app_commands.autocomplete(size=size_autocomplete)
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="How to combine them, e.g. 'the cat from image 1 wearing the hat from image 2'",
        image1="Image 1",
        image2="Image 2",
        image3="Image 3 (optional)",
        image4="Image 4 (optional)",
        image5="Image 5 (optional)",
        image6="Image 6 (optional)",
        size=SIZE_HELP,
        count="How many images; images plus results can be at most 15",
    )
    async def blend(
        self,
        interaction: discord.Interaction[SeedreamBot],
        prompt: str,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        size: str | None = None,
        count: app_commands.Range[int, 1, 13] | None = None,
    ) -> None:
        """Blend 2–6 images into new ones with Seedream 4.0."""
        images = [image for image in (image1, image2, image3, image4, image5, image6) if image is not None]
        await generate(interaction, kind="blend", prompt=prompt, attachments=images, size=size, count=count)


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Blend(bot))
