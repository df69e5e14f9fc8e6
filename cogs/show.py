"""/show: post a past job's images again, with working buttons.

The images are read back from the messages they were first posted in; only jobs of the same
server, from channels the member can see, can be shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import UserFacingError
from bot.core.format import plural
from bot.core.jobs.delivery import ResultBatch
from bot.core.jobs.naming import JOB_ID, typed_job_id
from bot.discord_ui.attachments import read_result_images
from bot.discord_ui.interaction_target import InteractionTarget
from bot.storage.jobs import JobRecord

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Show(commands.Cog):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot

    @app_commands.command(name="show")
    @app_commands.guild_only()
    @app_commands.describe(job="The job id from a result's footer, e.g. ab3dk2qz")
    async def show(self, interaction: discord.Interaction[SeedreamBot], job: str) -> None:
        """Post a past job's images here again, with working buttons."""
        job_id = typed_job_id(job)
        record = await self.bot.jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
        if record is None or not self._may_see(interaction, record):
            shown = discord.utils.escape_markdown(job_id[:16]) or "?"
            raise UserFacingError(
                f"I don't know a job `{shown}` in this server. The id is in the footer of every result, "
                "e.g. “Job ab3dk2qz”."
            )
        if not record.result_message_ids:
            if not record.state.finished:
                raise UserFacingError(f"Job `{record.id}` is still running; its images will appear where it "
                                      "was asked for.")
            raise UserFacingError(f"Job `{record.id}` has no images: {record.error or 'none were produced.'}")
        await interaction.response.defer(thinking=True)
        # Edit the placeholder first: the first followup would otherwise replace it.
        await interaction.edit_original_response(content=f"Fetching the images of job `{record.id}`…")
        stored = await read_result_images(self.bot, record)
        if not stored.batches:
            raise UserFacingError(
                f"The images of job `{record.id}` are gone: the messages they were posted in were deleted."
            )
        settings = self.bot.settings
        target = InteractionTarget(interaction, model=settings.image_model,
                                   token_margin=settings.interaction_token_margin_seconds)
        elapsed = (record.finished_at - record.started_at).total_seconds() \
            if record.finished_at and record.started_at else 0.0
        total = record.request.count
        posted = 0
        for files in stored.batches:
            await target.send_images(ResultBatch(record, files, total, elapsed))
            posted += len(files)
        summary = f"Job `{record.id}`: {plural(posted, 'image')} posted again."
        if stored.missing:
            summary += f" {stored.missing} image{'s are' if stored.missing != 1 else ' is'} gone " \
                       "(the message was deleted)."
        await interaction.edit_original_response(content=summary)

    def _may_see(self, interaction: discord.Interaction[Any], job: JobRecord) -> bool:
        """Only jobs of this server, from a channel the member can see."""
        if job.guild_id is None or job.guild_id != interaction.guild_id or interaction.guild is None:
            return False
        channel = interaction.guild.get_channel_or_thread(job.channel_id or 0)
        member = interaction.user
        if channel is None or not isinstance(member, discord.Member):
            return True  # a deleted channel or an uncached thread: its messages decide below
        return channel.permissions_for(member).view_channel


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Show(bot))
