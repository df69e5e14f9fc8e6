"""What a result's controls do: Reroll, Edit, Upscale, Delete and the image picker.

The controls themselves (bot/discord_ui/result_view.py) carry only ids; everything else is read from
the job row and from the result message, so they work after a restart for as long as the
message exists. Every job started here records where it came from (`parent_job_id`,
`source_message_id`: its result embed links there) and holds a dedupe key while it is
active, so a double click or a retried interaction starts one job, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.core.errors import UserFacingError
from bot.core.i18n import tr
from bot.core.images.sizes import upscale_size
from bot.core.jobs.delivery import JobOutcome
from bot.core.jobs.naming import image_index
from bot.core.jobs.preferences import MemberPreferences
from bot.core.jobs.requests import build_request
from bot.core.jobs.spec import StoredReference
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.attachments import (
    ReferenceSource,
    is_image,
    prepare_references,
)
from bot.discord_ui.claims import Claims
from bot.discord_ui.confirm import confirm_and_defer
from bot.discord_ui.edit_modal import EditPromptModal
from bot.discord_ui.locales import member_locale
from bot.discord_ui.replies import explain, reply_privately
from bot.discord_ui.requester import job_spec
from bot.discord_ui.restore import restored_request
from bot.discord_ui.result_view import CONTROLS, RESULTS_COG, picked_image_view
from bot.storage.jobs import DuplicateJob, JobRecord

if TYPE_CHECKING:
    from bot.app import SeedreamBot

log = logging.getLogger(__name__)

Started = asyncio.Future[JobOutcome] | None  # a started job's end, or None when none started

ALREADY_WORKING = tr("I'm already working on that — one click is enough. The result will appear here.")
UNKNOWN_JOB = tr("I have no record of the job behind this result any more, so I can't do that.")
NOT_YOURS = tr("Only the member who asked for this image, or someone with Manage Messages, can delete it.")
UPSCALE_PROMPT = (
    "Upscale this image to 4K. Keep it exactly as it is: the same composition, subjects, colours, "
    "lighting and style; only add fine detail and sharpness."
)


@contextlib.asynccontextmanager
async def answering(interaction: discord.Interaction[Any], what: str) -> AsyncIterator[None]:
    """Every refusal or failure of a control is answered privately; unexpected ones are logged."""
    try:
        yield
    except DuplicateJob:
        await reply_privately(interaction, ALREADY_WORKING)
    except Exception as error:
        await reply_privately(interaction, explain(error, what))



def find_image(message: discord.Message, job_id: str, index: int) -> discord.Attachment:
    """The attachment of `message` holding image `index` of the job."""
    for attachment in message.attachments:
        if image_index(attachment.filename, job_id) == index:
            return attachment
    images = [attachment for attachment in message.attachments if is_image(attachment)]
    if len(images) == 1:
        return images[0]
    raise UserFacingError(tr("I can't find image {number} on that message any more.", number=index + 1))



def dedupe_key(action: str, *parts: object) -> str:
    return ":".join([action, *(str(part) for part in parts)])



class Results(commands.Cog, name=RESULTS_COG):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot
        self._claims = Claims()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*CONTROLS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*CONTROLS)

    # -- the controls (bot.discord_ui.result_view.ResultActions) -------------------------------------------

    async def reroll(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        source = interaction.message
        key = dedupe_key("reroll", source.id if source else job_id, interaction.user.id)
        await self._once(interaction, key, lambda: self._reroll(interaction, job_id, key))

    async def _reroll(self, interaction: discord.Interaction[Any], job_id: str, key: str) -> Started:
        asked = None
        async with answering(interaction, "Reroll"):
            job = await self._job(job_id)
            source = interaction.message
            asked = await confirm_and_defer(interaction, job.request.count)
        if asked is None:
            return None
        async with answering(asked, "Reroll"):
            request, references = await self._repeat(job, asked.user.id)
            return await self._start(asked, job, "reroll", request, references, source.id if source else None, key)
        return None

    async def edit(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                   message_id: int | None) -> None:
        async with answering(interaction, "Edit"):
            job = await self._job(job_id)
            source_id = message_id or (interaction.message.id if interaction.message else None)
            if source_id is None:
                raise UserFacingError(tr("I can't tell which image to edit. Please use the button on the image."))
            count = job.request.count
            modal = EditPromptModal(
                title=(tr("Edit image {number}", number=index + 1) if count > 1 else tr("Edit image")).render(
                    member_locale(interaction)),
                submit=lambda modal_interaction, prompt, size: self.submit_edit(
                    modal_interaction, job, index, source_id, prompt, size
                ),
                max_prompt_length=self.bot.settings.max_prompt_length,
                size_hint=job.request.size or self.bot.settings.default_size,
                locale=member_locale(interaction),
            )
            await interaction.response.send_modal(modal)

    async def submit_edit(self, interaction: discord.Interaction[Any], job: JobRecord, index: int,
                          source_message_id: int, prompt: str, size: str | None) -> None:
        async with answering(interaction, "the Edit modal"):
            # Prompt and size are checked before anything is downloaded. What the form and the prompt's
            # flags leave open is the original's (its size and watermark).
            original = MemberPreferences(size=job.request.size or None, watermark=job.request.watermark)
            planned = build_request(self.bot.settings, prompt=prompt, requester_id=interaction.user.id,
                                    size=size, preferences=original)
            digest = hashlib.sha256(planned.prompt.encode()).hexdigest()[:12]
            key = dedupe_key("edit", source_message_id, index, interaction.user.id, digest)
            await self._once(interaction, key,
                             lambda: self._submit_edit(interaction, job, index, source_message_id, planned, key))

    async def _submit_edit(self, interaction: discord.Interaction[Any], job: JobRecord, index: int,
                           source_message_id: int, planned: GenerationRequest, key: str) -> Started:
        asked = None
        async with answering(interaction, "the Edit modal"):
            asked = await confirm_and_defer(interaction, planned.count)
        if asked is None:
            return None
        async with answering(asked, "the Edit modal"):
            source = await self._source_message(asked, source_message_id)
            request, references = await self._with_image(planned, source, job, index)
            return await self._start(asked, job, "edit", request, references, source.id, key)
        return None

    async def upscale(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                      message_id: int | None) -> None:
        source_id = message_id or (interaction.message.id if interaction.message else None)
        key = dedupe_key("upscale", source_id, index, interaction.user.id)
        await self._once(interaction, key, lambda: self._upscale(interaction, job_id, index, message_id, key))

    async def _upscale(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                       message_id: int | None, key: str) -> Started:
        asked = None
        async with answering(interaction, "Upscale"):
            job = await self._job(job_id)
            asked = await confirm_and_defer(interaction, 1)
        if asked is None:
            return None
        async with answering(asked, "Upscale"):
            source = await self._source_message(asked, message_id)
            image = find_image(source, job.id, index)
            prompt = f"{UPSCALE_PROMPT}\n\nThe image: {job.request.prompt}"
            planned = build_request(self.bot.settings, prompt=prompt[: self.bot.settings.max_prompt_length],
                                    requester_id=asked.user.id, size=upscale_size(image.width, image.height),
                                    watermark=job.request.watermark)
            request, references = await self._with_image(planned, source, job, index)
            return await self._start(asked, job, "upscale", request, references, source.id, key)
        return None

    async def delete(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        async with answering(interaction, "Delete"):
            message = interaction.message
            if message is None:
                raise UserFacingError(tr("That message is gone already."))
            job = await self.bot.jobs.get(job_id)
            user_id = interaction.user.id
            posted_for = message.interaction_metadata.user.id if message.interaction_metadata else None
            allowed = (
                (job is not None and job.requester_id == user_id)
                or posted_for == user_id  # e.g. the member whose /show re-posted it
                or interaction.permissions.manage_messages
            )
            if not allowed:
                raise UserFacingError(NOT_YOURS)
            await interaction.response.defer()
            try:
                await message.delete()
            except discord.NotFound:
                pass
            except discord.HTTPException:
                raise UserFacingError(tr("I couldn't delete that message. Please try again.")) from None

    async def pick(self, interaction: discord.Interaction[Any], job_id: str, index: int) -> None:
        async with answering(interaction, "the image picker"):
            job = await self._job(job_id)
            message = interaction.message
            if message is None:
                raise UserFacingError(tr("That message is gone."))
            image = find_image(message, job.id, index)
            total = job.request.count
            locale = member_locale(interaction)
            embed = discord.Embed(
                description=tr("**Image {number}** of {total}: edit it with a new prompt, or upscale it to 4K.",
                               number=index + 1, total=total).render(locale),
                colour=discord.Colour(0x5865F2),
            )
            embed.set_thumbnail(url=image.url)
            await interaction.response.send_message(
                embed=embed, view=picked_image_view(job.id, index, message.id, locale), ephemeral=True
            )

    # -- helpers ---------------------------------------------------------------------------------

    async def _job(self, job_id: str) -> JobRecord:
        job = await self.bot.jobs.get(job_id)
        if job is None:
            raise UserFacingError(UNKNOWN_JOB)
        return job

    async def _start(self, interaction: discord.Interaction[Any], parent: JobRecord, kind: str,
                     request: GenerationRequest, references: Sequence[StoredReference],
                     source_message_id: int | None, key: str) -> Started:
        spec = job_spec(interaction, kind=kind, request=request, references=references, parent_job_id=parent.id,
                        source_message_id=source_message_id, dedupe_key=key)
        return await self.bot.start_job(interaction, spec)

    async def _once(self, interaction: discord.Interaction[Any], key: str,
                    work: Callable[[], Awaitable[Started]]) -> None:
        """Run a click's `work` unless the same click is still being worked on here; then refuse it
        privately at once, before anything public (the job's dedupe key catches the rest)."""
        if not self._claims.take(key):
            await reply_privately(interaction, ALREADY_WORKING)
            return
        started: Started = None
        try:
            started = await work()
        finally:
            self._claims.release(key, started)

    async def _source_message(self, interaction: discord.Interaction[Any], message_id: int | None) -> discord.Message:
        """The result message holding the image: the clicked one, or (from the picker) fetched by id."""
        clicked = interaction.message
        if clicked is not None and (message_id is None or clicked.id == message_id):
            return clicked
        if message_id is None or interaction.channel_id is None:
            raise UserFacingError(tr("I can't tell which message the image is on."))
        channel = self.bot.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)
        try:
            return await channel.fetch_message(message_id)
        except discord.NotFound:
            raise UserFacingError(tr("That image's message was deleted, so I can't use the image.")) from None
        except discord.Forbidden:
            raise UserFacingError(tr("I can't read that image's message: I need Read Message History here.")) from None

    async def _with_image(self, planned: GenerationRequest, source: discord.Message, job: JobRecord,
                          index: int) -> tuple[GenerationRequest, tuple[StoredReference, ...]]:
        """`planned` with image `index` of `source` as its reference, and where that image lives."""
        image = find_image(source, job.id, index)
        prepared = await prepare_references([ReferenceSource(image, source.id, source.channel.id)],
                                            transport=self.bot.settings.reference_transport)
        return replace(planned, references=prepared.references), prepared.stored

    async def _repeat(self, job: JobRecord, requester_id: int) -> tuple[GenerationRequest, tuple[StoredReference, ...]]:
        """The job's stored request again (references fetched afresh), for a new requester."""
        return await restored_request(self.bot, self.bot.http_session, self.bot.settings, job.request, requester_id)


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Results(bot))
