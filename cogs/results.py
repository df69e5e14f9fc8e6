"""What a result's controls do (Reroll, Edit, Upscale, Delete, the image picker), and /show.

The controls themselves (bot/discord_ui/result_view.py) carry only ids; everything else is read from
the job row and from the result message, so they work after a restart for as long as the
message exists. Every job started here records where it came from (`parent_job_id`,
`source_message_id`: its result embed links there) and holds a dedupe key while it is
active, so a double click or a retried interaction starts one job, not two.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import UserFacingError
from bot.core.images.packing import OutgoingFile
from bot.core.images.references import DEFAULT_RULES, encode_references, inspect_reference
from bot.core.images.sizes import MAX_PIXELS, MAX_RATIO, MIN_PIXELS
from bot.core.images.sniff import sniff_content_type
from bot.core.jobs.requests import build_request
from bot.core.jobs.runner import JobSpec, ResultBatch
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.attachments import ReferenceSource, ReferenceUnavailable, is_image, prepare_references
from bot.discord_ui.edit_modal import EditPromptModal
from bot.discord_ui.interaction_target import InteractionTarget
from bot.discord_ui.members import member_role_ids
from bot.discord_ui.replies import explain, reply_privately
from bot.discord_ui.result_view import CONTROLS, RESULTS_COG, picked_image_view
from bot.storage.jobs import DuplicateJob, JobRecord

if TYPE_CHECKING:
    from bot.app import SeedreamBot

log = logging.getLogger(__name__)

ALREADY_WORKING = "I'm already working on that — one click is enough. The result will appear here."
UNKNOWN_JOB = "I have no record of the job behind this result any more, so I can't do that."
REFERENCES_GONE = (
    "I can't reroll this: its reference images are gone (the message holding them was deleted, or "
    "the upload has expired). Start again with the images, e.g. `/imagine` with `reference`."
)
NOT_YOURS = "Only the member who asked for this image, or someone with Manage Messages, can delete it."
DOWNLOAD_TIMEOUT = 60.0
# An image at least this large is 4K already; upscaling it again would add nothing.
ALREADY_4K_PIXELS = int(MAX_PIXELS * 0.8)
UPSCALE_PROMPT = (
    "Upscale this image to 4K. Keep it exactly as it is: the same composition, subjects, colours, "
    "lighting and style; only add fine detail and sharpness."
)
JOB_ID = re.compile(r"[a-z2-7]{8}")


@contextlib.asynccontextmanager
async def answering(interaction: discord.Interaction[Any], what: str) -> AsyncIterator[None]:
    """Every refusal or failure of a control is answered privately; unexpected ones are logged."""
    try:
        yield
    except DuplicateJob:
        await reply_privately(interaction, ALREADY_WORKING)
    except Exception as error:
        await reply_privately(interaction, explain(error, what))


def image_number(filename: str, job_id: str) -> int | None:
    """The 0-based image index in a result attachment's name (`seedream-<job>-<n>.<ext>`)."""
    match = re.fullmatch(rf"seedream-{re.escape(job_id)}-(\d+)\.\w+", filename)
    return int(match.group(1)) - 1 if match else None


def find_image(message: discord.Message, job_id: str, index: int) -> discord.Attachment:
    """The attachment of `message` holding image `index` of the job."""
    for attachment in message.attachments:
        if image_number(attachment.filename, job_id) == index:
            return attachment
    images = [attachment for attachment in message.attachments if is_image(attachment)]
    if len(images) == 1:
        return images[0]
    raise UserFacingError(f"I can't find image {index + 1} on that message any more.")


def upscale_size(width: int | None, height: int | None) -> str:
    """A 4K size with the image's aspect ratio (multiples of 16), or `4K` when it is unknown."""
    if not width or not height:
        return "4K"
    if width * height >= ALREADY_4K_PIXELS:
        raise UserFacingError(f"This image is already 4K ({width}×{height}); upscaling it again adds nothing.")
    scale = math.sqrt(MAX_PIXELS / (width * height))
    new_width, new_height = int(width * scale) // 16 * 16, int(height * scale) // 16 * 16
    if (new_width * new_height < MIN_PIXELS or new_width > MAX_RATIO * new_height
            or new_height > MAX_RATIO * new_width):
        return "4K"
    return f"{new_width}x{new_height}"


def dedupe_key(action: str, *parts: object) -> str:
    return ":".join([action, *(str(part) for part in parts)])


@dataclass(frozen=True)
class StoredImages:
    """A past job's images read back from its result messages, one batch per message."""

    batches: list[list[OutgoingFile]]
    missing: int


class Results(commands.Cog, name=RESULTS_COG):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*CONTROLS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*CONTROLS)

    # -- the controls (bot.discord_ui.result_view.ResultActions) -------------------------------------------

    async def reroll(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        async with answering(interaction, "Reroll"):
            job = await self._job(job_id)
            source = interaction.message
            await interaction.response.defer(thinking=True)
            request, extra = await self._repeat(job, interaction.user.id)
            await self._start(interaction, job, "reroll", request, extra, source.id if source else None,
                              dedupe_key("reroll", source.id if source else job.id, interaction.user.id))

    async def edit(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                   message_id: int | None) -> None:
        async with answering(interaction, "Edit"):
            job = await self._job(job_id)
            source_id = message_id or (interaction.message.id if interaction.message else None)
            if source_id is None:
                raise UserFacingError("I can't tell which image to edit. Please use the button on the image.")
            count = int(job.request.get("count", 1))
            modal = EditPromptModal(
                title=f"Edit image {index + 1}" if count > 1 else "Edit image",
                submit=lambda modal_interaction, prompt, size: self.submit_edit(
                    modal_interaction, job, index, source_id, prompt, size
                ),
                max_prompt_length=self.bot.settings.max_prompt_length,
                size_hint=str(job.request.get("size") or self.bot.settings.default_size),
            )
            await interaction.response.send_modal(modal)

    async def submit_edit(self, interaction: discord.Interaction[Any], job: JobRecord, index: int,
                          source_message_id: int, prompt: str, size: str | None) -> None:
        async with answering(interaction, "the Edit modal"):
            size = size or str(job.request.get("size") or "") or None
            # Prompt and size are checked before anything is downloaded.
            planned = build_request(self.bot.settings, prompt=prompt, requester_id=interaction.user.id,
                                    size=size, watermark=job.request.get("watermark"))
            await interaction.response.defer(thinking=True)
            source = await self._source_message(interaction, source_message_id)
            request, extra = await self._with_image(planned, source, job, index)
            digest = hashlib.sha256(planned.prompt.encode()).hexdigest()[:12]
            await self._start(interaction, job, "edit", request, extra, source.id,
                              dedupe_key("edit", source.id, index, interaction.user.id, digest))

    async def upscale(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                      message_id: int | None) -> None:
        async with answering(interaction, "Upscale"):
            job = await self._job(job_id)
            await interaction.response.defer(thinking=True)
            source = await self._source_message(interaction, message_id)
            image = find_image(source, job.id, index)
            prompt = f"{UPSCALE_PROMPT}\n\nThe image: {job.request.get('prompt', '')}"
            planned = build_request(self.bot.settings, prompt=prompt[: self.bot.settings.max_prompt_length],
                                    requester_id=interaction.user.id, size=upscale_size(image.width, image.height),
                                    watermark=job.request.get("watermark"))
            request, extra = await self._with_image(planned, source, job, index)
            await self._start(interaction, job, "upscale", request, extra, source.id,
                              dedupe_key("upscale", source.id, index, interaction.user.id))

    async def delete(self, interaction: discord.Interaction[Any], job_id: str) -> None:
        async with answering(interaction, "Delete"):
            message = interaction.message
            if message is None:
                raise UserFacingError("That message is gone already.")
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
                raise UserFacingError("I couldn't delete that message. Please try again.") from None

    async def pick(self, interaction: discord.Interaction[Any], job_id: str, index: int) -> None:
        async with answering(interaction, "the image picker"):
            job = await self._job(job_id)
            message = interaction.message
            if message is None:
                raise UserFacingError("That message is gone.")
            image = find_image(message, job.id, index)
            total = int(job.request.get("count", 1))
            embed = discord.Embed(
                description=f"**Image {index + 1}** of {total}: edit it with a new prompt, or upscale it to 4K.",
                colour=discord.Colour(0x5865F2),
            )
            embed.set_thumbnail(url=image.url)
            await interaction.response.send_message(
                embed=embed, view=picked_image_view(job.id, index, message.id), ephemeral=True
            )

    # -- /show -----------------------------------------------------------------------------------

    @app_commands.command(name="show")
    @app_commands.guild_only()
    @app_commands.describe(job="The job id from a result's footer, e.g. ab3dk2qz")
    async def show(self, interaction: discord.Interaction[SeedreamBot], job: str) -> None:
        """Post a past job's images here again, with working buttons."""
        job_id = job.strip().strip("`").lower().removeprefix("job").strip()
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
        stored = await self._stored_images(record)
        if not stored.batches:
            raise UserFacingError(
                f"The images of job `{record.id}` are gone: the messages they were posted in were deleted."
            )
        settings = self.bot.settings
        target = InteractionTarget(interaction, model=settings.image_model,
                                   token_margin=settings.interaction_token_margin_seconds)
        elapsed = (record.finished_at - record.started_at).total_seconds() \
            if record.finished_at and record.started_at else 0.0
        total = int(record.request.get("count", 1))
        posted = 0
        for files in stored.batches:
            await target.send_images(ResultBatch(record, files, total, elapsed))
            posted += len(files)
        summary = f"Job `{record.id}`: {posted} image{'s' if posted != 1 else ''} posted again."
        if stored.missing:
            summary += f" {stored.missing} image{'s are' if stored.missing != 1 else ' is'} gone " \
                       "(the message was deleted)."
        await interaction.edit_original_response(content=summary)

    # -- helpers ---------------------------------------------------------------------------------

    async def _job(self, job_id: str) -> JobRecord:
        job = await self.bot.jobs.get(job_id)
        if job is None:
            raise UserFacingError(UNKNOWN_JOB)
        return job

    def _may_see(self, interaction: discord.Interaction[Any], job: JobRecord) -> bool:
        """Only jobs of this server, from a channel the member can see."""
        if job.guild_id is None or job.guild_id != interaction.guild_id or interaction.guild is None:
            return False
        channel = interaction.guild.get_channel_or_thread(job.channel_id or 0)
        member = interaction.user
        if channel is None or not isinstance(member, discord.Member):
            return True  # a deleted channel or an uncached thread: its messages decide below
        return channel.permissions_for(member).view_channel

    async def _start(self, interaction: discord.Interaction[Any], parent: JobRecord, kind: str,
                     request: GenerationRequest, extra: dict[str, Any], source_message_id: int | None,
                     key: str) -> None:
        spec = JobSpec(
            kind=kind,
            requester_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            request=request,
            role_ids=member_role_ids(interaction.user),
            parent_job_id=parent.id,
            source_message_id=source_message_id,
            dedupe_key=key,
            extra=extra,
        )
        await self.bot.start_job(interaction, spec)

    async def _source_message(self, interaction: discord.Interaction[Any], message_id: int | None) -> discord.Message:
        """The result message holding the image: the clicked one, or (from the picker) fetched by id."""
        clicked = interaction.message
        if clicked is not None and (message_id is None or clicked.id == message_id):
            return clicked
        if message_id is None or interaction.channel_id is None:
            raise UserFacingError("I can't tell which message the image is on.")
        channel = self.bot.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)
        try:
            return await channel.fetch_message(message_id)
        except discord.NotFound:
            raise UserFacingError("That image's message was deleted, so I can't use the image.") from None
        except discord.Forbidden:
            raise UserFacingError("I can't read that image's message: I need Read Message History here.") from None

    async def _with_image(self, planned: GenerationRequest, source: discord.Message, job: JobRecord,
                          index: int) -> tuple[GenerationRequest, dict[str, Any]]:
        """`planned` with image `index` of `source` as its reference, and the job's `extra`."""
        image = find_image(source, job.id, index)
        prepared = await prepare_references([ReferenceSource(image, source.id, source.channel.id)],
                                            transport=self.bot.settings.reference_transport)
        return replace(planned, references=prepared.references), {"references": prepared.descriptors}

    async def _repeat(self, job: JobRecord, requester_id: int) -> tuple[GenerationRequest, dict[str, Any]]:
        """The job's stored request again (references fetched afresh), for a new requester."""
        stored = job.request
        descriptors = [d for d in stored.get("references") or [] if isinstance(d, dict)]
        if len(descriptors) < int(stored.get("reference_count", 0)):
            raise UserFacingError(REFERENCES_GONE)
        references, fresh = await self._stored_references(descriptors)
        request = build_request(
            self.bot.settings,
            prompt=str(stored["prompt"]),
            requester_id=requester_id,
            size=str(stored["size"]),
            count=int(stored.get("count", 1)),
            watermark=stored.get("watermark"),
            references=references,
        )
        return request, ({"references": fresh} if fresh else {})

    async def _stored_references(self, descriptors: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...],
                                                                                          list[dict[str, Any]]]:
        """Fetch and re-check the references a job recorded (bot/discord_ui/attachments.py descriptors)."""
        if not descriptors:
            return (), []
        found = [await self._stored_reference(descriptor) for descriptor in descriptors]
        images = [await inspect_reference(name, content) for name, content, _, _ in found]
        if self.bot.settings.reference_transport == "data_uri":
            references = await encode_references(images)
        else:
            references = tuple(url for _, _, url, _ in found)
        return references, [descriptor for _, _, _, descriptor in found]

    async def _stored_reference(self, descriptor: dict[str, Any]) -> tuple[str, bytes, str, dict[str, Any]]:
        """(name, bytes, url, fresh descriptor) of one stored reference, from its message or its URL."""
        name = str(descriptor.get("filename") or "image")
        message_id, channel_id = descriptor.get("message_id"), descriptor.get("channel_id")
        if message_id and channel_id:
            channel = self.bot.get_partial_messageable(int(channel_id))
            with contextlib.suppress(discord.NotFound, discord.Forbidden):
                message = await channel.fetch_message(int(message_id))
                wanted = [a for a in message.attachments if a.id == descriptor.get("attachment_id")] or \
                    [a for a in message.attachments if a.filename == name]
                if wanted:
                    try:
                        content = await wanted[0].read()
                    except discord.HTTPException:
                        raise ReferenceUnavailable(name) from None
                    source = ReferenceSource(wanted[0], message.id, message.channel.id)
                    return name, content, wanted[0].url, source.descriptor()
            raise UserFacingError(REFERENCES_GONE)  # a deleted image is not brought back from the CDN
        url = descriptor.get("url")  # a slash-command upload: no message, only its (expiring) URL
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            downloaded = await self._download(url)
            if downloaded is not None:
                return name, downloaded, url, dict(descriptor)
        raise UserFacingError(REFERENCES_GONE)

    async def _download(self, url: str) -> bytes | None:
        """An upload's bytes from its (possibly expired) CDN URL; None when it is gone."""
        limit = DEFAULT_RULES.max_bytes + 1  # one byte over is enough for the size rule to speak
        try:
            timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
            async with self.bot.http_session.get(url, timeout=timeout) as response:
                if response.status != 200:
                    return None
                content = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    content += chunk
                    if len(content) >= limit:
                        break
                return bytes(content)
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _stored_images(self, job: JobRecord) -> StoredImages:
        """The job's images, read back from the messages they were posted in."""
        channel = self.bot.get_partial_messageable(job.channel_id or 0, guild_id=job.guild_id)
        batches: list[list[OutgoingFile]] = []
        for message_id in job.result_message_ids:
            try:
                message = await channel.fetch_message(message_id)
            except (discord.NotFound, discord.Forbidden):
                continue
            files = []
            for position, attachment in enumerate(a for a in message.attachments if is_image(a)):
                index = image_number(attachment.filename, job.id)
                try:
                    content = await attachment.read()
                except discord.HTTPException:
                    continue
                content_type = sniff_content_type(content) or attachment.content_type or "image/jpeg"
                files.append(OutgoingFile(attachment.filename, content, content_type,
                                          index if index is not None else position))
            if files:
                batches.append(files)
        delivered = len(job.images) or int(job.request.get("count", 1))
        found = sum(len(files) for files in batches)
        return StoredImages(batches, max(0, delivered - found))


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Results(bot))
