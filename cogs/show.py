"""/show: post a past job's images again, with working buttons.

The images are read back from the messages they were first posted in; only jobs of the same
server, from channels the member can see, can be shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.errors import UserFacingError
from bot.core.i18n import join, tr, trn
from bot.core.jobs.delivery import ResultBatch
from bot.core.jobs.naming import JOB_ID, typed_job_id
from bot.discord_ui.attachments import read_result_images
from bot.discord_ui.cog import BotCog
from bot.discord_ui.deliveries import InteractionDelivery
from bot.discord_ui.interaction_target import InteractionTarget
from bot.discord_ui.locales import member_locale
from bot.storage.jobs import JobRecord

if TYPE_CHECKING:
    from bot.app import SeedreamBot


class Show(BotCog):
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
                tr("I don't know a job `{job}` in this server. The id is in the footer of every result, "
                   "e.g. “Job ab3dk2qz”.", job=shown)
            )
        if not record.images:
            if not record.state.finished:
                raise UserFacingError(tr("Job `{job}` is still running; its images will appear where it "
                                         "was asked for.", job=record.id))
            raise UserFacingError(tr("Job `{job}` has no images: {reason}", job=record.id,
                                     reason=record.error or tr("none were produced.")))
        await interaction.response.defer(thinking=True)
        # Edit the placeholder first: the first followup would otherwise replace it.
        fetching = tr("Fetching the images of job `{job}`…", job=record.id)
        await interaction.edit_original_response(content=fetching.render(member_locale(interaction)))
        stored = await read_result_images(self.bot, record, await self.bot.jobs.messages_of(record.id))
        if not stored.batches:
            raise UserFacingError(
                tr("The images of job `{job}` are gone: the messages they were posted in were deleted.", job=record.id)
            )
        settings = self.bot.settings
        target = InteractionTarget(self.bot, InteractionDelivery.from_interaction(interaction),
                                   model=settings.image_model, token_margin=settings.interaction_token_margin_seconds)
        elapsed = (record.finished_at - record.started_at).total_seconds() \
            if record.finished_at and record.started_at else 0.0
        total = record.request.count
        posted = 0
        for files in stored.batches:
            message_ids = await target.send_images(ResultBatch(record, files, total, elapsed))
            posted += len(files)
            # Recorded like the originals: a later /show finds the images here if those are deleted.
            async with self.bot.jobs.transaction() as conn:
                for message_id in message_ids:
                    await self.bot.jobs.record_posted(record.id, message_id, [{"index": f.index} for f in files],
                                                      channel_id=interaction.channel_id, kind="show", conn=conn)
        summary: list[str] = [trn("Job `{job}`: {count} image posted again.",
                                  "Job `{job}`: {count} images posted again.", posted, job=record.id)]
        if stored.missing:
            summary.append(trn("{count} image is gone (the message was deleted).",
                               "{count} images are gone (the message was deleted).", stored.missing))
        await interaction.edit_original_response(content=join(summary).render(member_locale(interaction)))

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
