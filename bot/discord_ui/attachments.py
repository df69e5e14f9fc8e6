"""Images in from Discord: references for a new job, and a past job's images read back.

Two steps for a new job, so members hear about most mistakes before anything is downloaded:

1. `plan_request` checks what needs no download (prompt, size, count, how many references,
   each image's declared size) and builds the `GenerationRequest` with placeholder references.
2. `attach_references` downloads each image with `attachment.read()`, validates the bytes
   (bot/core/images/references.py: type, bytes, dimensions, aspect ratio) and swaps in what the
   relay gets: data URIs (`REFERENCE_TRANSPORT=data_uri`, works with any relay) or the Discord CDN
   URLs (`url`, for relays that can fetch them). It also returns where each image came from
   (`StoredReference`, kept with the job so Reroll can fetch them again: `refetch_references`).

`read_result_images` reads a past job's images back from the messages they were posted in (/show).
"""


from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import aiohttp
import discord

from bot.config import Settings
from bot.core.errors import UserFacingError
from bot.core.i18n import tr
from bot.core.images.packing import OutgoingFile
from bot.core.images.references import (
    DEFAULT_RULES,
    ReferenceImage,
    ReferenceRules,
    check_byte_size,
    check_counts,
    display_name,
    encode_references,
    inspect_reference,
)
from bot.core.images.sniff import sniff_content_type
from bot.core.jobs.naming import image_index
from bot.core.jobs.preferences import NO_PREFERENCES, MemberPreferences
from bot.core.jobs.requests import build_request
from bot.core.jobs.spec import StoredReference
from bot.core.relay.models import GenerationRequest
from bot.storage.jobs import JobRecord, PostedMessage

Transport = Literal["data_uri", "url"]
T = TypeVar("T")

DOWNLOAD_TIMEOUT = 60.0  # seconds for one image from Discord's CDN
# For attachments that arrive without a content type (the bytes decide in the end).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif")
REFERENCES_GONE = tr(
    "I can't reroll this: its reference images are gone (the message holding them was deleted, or "
    "the upload has expired). Start again with the images, e.g. `/imagine` with `reference`."
)


class ReferenceUnavailable(UserFacingError):
    """An image could not be downloaded from Discord; `user_message` is safe for Discord."""

    def __init__(self, name: str) -> None:
        super().__init__(
            tr("I couldn't download “{name}” from Discord. Please try again, or upload the image again.",
               name=display_name(name))
        )


@dataclass(frozen=True)
class ReferenceSource:
    """One attachment used as a reference, and where it lives (for the job's record)."""

    attachment: discord.Attachment
    message_id: int | None = None
    channel_id: int | None = None

    @property
    def name(self) -> str:
        return self.attachment.filename

    def stored(self) -> StoredReference:
        return StoredReference(
            attachment_id=self.attachment.id,
            filename=self.attachment.filename,
            url=self.attachment.url,
            message_id=self.message_id,
            channel_id=self.channel_id,
        )


@dataclass(frozen=True)
class PreparedReferences:
    references: tuple[str, ...]  # for GenerationRequest.references, in order
    stored: tuple[StoredReference, ...]  # for JobSpec.references


@dataclass(frozen=True)
class _Downloaded:
    name: str
    content: bytes
    url: str
    stored: StoredReference


def is_image(attachment: discord.Attachment) -> bool:
    """Whether a message's attachment looks like an image (other files are not references)."""
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if kind:
        return kind.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


def message_sources(message: discord.Message) -> list[ReferenceSource]:
    """The images attached to a message, in their order; other files are skipped."""
    return [
        ReferenceSource(attachment, message.id, message.channel.id)
        for attachment in message.attachments
        if is_image(attachment)
    ]


def check_sources(sources: Sequence[ReferenceSource], rules: ReferenceRules = DEFAULT_RULES) -> None:
    """The checks that need no download: how many images, and each one's declared size."""
    # Only the "at most 14" rule here: references plus requested images is build_request's rule.
    check_counts(len(sources), 0, rules)
    for source in sources:
        check_byte_size(source.name, source.attachment.size, rules)


def plan_request(
    settings: Settings,
    *,
    prompt: str,
    requester_id: int,
    sources: Sequence[ReferenceSource],
    size: str | None = None,
    count: int | None = None,
    watermark: bool | None = None,
    preferences: MemberPreferences = NO_PREFERENCES,
    variations: bool = False,
) -> GenerationRequest:
    """Validate a request with references before anything is downloaded.

    The references in the returned request are the attachments' URLs, placeholders until
    `attach_references` has checked the images. Raises `InvalidReference` or `InvalidRequest`.
    """
    check_sources(sources)
    return build_request(
        settings,
        prompt=prompt,
        requester_id=requester_id,
        size=size,
        count=count,
        watermark=watermark,
        references=[source.attachment.url for source in sources],
        preferences=preferences,
        variations=variations,
    )


async def attach_references(
    request: GenerationRequest, sources: Sequence[ReferenceSource], *, transport: Transport
) -> tuple[GenerationRequest, tuple[StoredReference, ...]]:
    """The planned request with its checked references, and where each came from."""
    if not sources:
        return request, ()
    prepared = await prepare_references(sources, transport=transport)
    return replace(request, references=prepared.references), prepared.stored


async def prepare_references(
    sources: Sequence[ReferenceSource], *, transport: Transport, rules: ReferenceRules = DEFAULT_RULES
) -> PreparedReferences:
    """Download and validate every image (the first bad one, in order, is reported), then encode."""
    check_sources(sources, rules)
    downloaded = _first_error_or_all(await asyncio.gather(
        *(_download(source, rules) for source in sources), return_exceptions=True
    ))
    return await _checked(downloaded, transport, rules)


async def refetch_references(
    client: discord.Client, session: aiohttp.ClientSession, stored: Sequence[StoredReference], *,
    transport: Transport,
) -> PreparedReferences:
    """A past job's references again: from their messages (fresh URLs), else an upload's own URL.

    Raises `UserFacingError(REFERENCES_GONE)` when one is gone: a deleted image is not brought
    back from the CDN.
    """
    downloaded = [await _refetch(client, session, reference) for reference in stored]
    return await _checked(downloaded, transport, DEFAULT_RULES)


async def _checked(downloaded: Sequence[_Downloaded], transport: Transport, rules: ReferenceRules,
                   ) -> PreparedReferences:
    """The one path every reference takes: inspect the bytes, then encode for the relay.

    One image at a time: a small upload can decode to hundreds of megabytes (references.py).
    """
    images: list[ReferenceImage] = [
        await inspect_reference(item.name, item.content, rules) for item in downloaded
    ]
    if transport == "data_uri":
        references = await encode_references(images)
    else:
        references = tuple(item.url for item in downloaded)
    return PreparedReferences(references, tuple(item.stored for item in downloaded))


async def _download(source: ReferenceSource, rules: ReferenceRules = DEFAULT_RULES) -> _Downloaded:
    try:
        async with asyncio.timeout(DOWNLOAD_TIMEOUT):
            content = await source.attachment.read()
    except (discord.DiscordException, aiohttp.ClientError, TimeoutError):
        raise ReferenceUnavailable(source.name) from None
    check_byte_size(source.name, len(content), rules)  # the declared size may have been wrong
    return _Downloaded(source.name, content, source.attachment.url, source.stored())


async def _refetch(client: discord.Client, session: aiohttp.ClientSession,
                   reference: StoredReference) -> _Downloaded:
    if reference.message_id and reference.channel_id:
        channel = client.get_partial_messageable(reference.channel_id)
        with contextlib.suppress(discord.NotFound, discord.Forbidden):
            message = await channel.fetch_message(reference.message_id)
            wanted = [a for a in message.attachments if a.id == reference.attachment_id] or \
                [a for a in message.attachments if a.filename == reference.filename]
            if wanted:
                return await _download(ReferenceSource(wanted[0], message.id, message.channel.id))
        raise UserFacingError(REFERENCES_GONE)
    if reference.url.startswith(("https://", "http://")):  # a slash-command upload: only its URL
        content = await _download_url(session, reference.url)
        if content is not None:
            return _Downloaded(reference.filename, content, reference.url, reference)
    raise UserFacingError(REFERENCES_GONE)


async def _download_url(session: aiohttp.ClientSession, url: str) -> bytes | None:
    """An upload's bytes from its (possibly expired) CDN URL; None when it is gone."""
    limit = DEFAULT_RULES.max_bytes + 1  # one byte over is enough for the size rule to speak
    try:
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        async with session.get(url, timeout=timeout) as response:
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


@dataclass(frozen=True)
class ResultImages:
    """A past job's images read back from its result messages, one batch per message."""

    batches: list[list[OutgoingFile]]
    missing: int


async def read_result_images(
    client: discord.Client, job: JobRecord, messages: Sequence[PostedMessage]
) -> ResultImages:
    """The job's images, read back from the messages that carry them (results, then re-posts);
    each image once, from the first message that still has it."""
    batches: list[list[OutgoingFile]] = []
    seen: set[int] = set()
    for posted in messages:
        channel = client.get_partial_messageable(posted.channel_id or job.channel_id or 0, guild_id=job.guild_id)
        if set(posted.images) <= seen:
            continue
        try:
            message = await channel.fetch_message(posted.message_id)
        except (discord.NotFound, discord.Forbidden):
            continue
        files = []
        for position, attachment in enumerate(a for a in message.attachments if is_image(a)):
            index = image_index(attachment.filename, job.id)
            index = index if index is not None else position
            if index in seen:
                continue
            try:
                content = await attachment.read()
            except discord.HTTPException:
                continue
            content_type = sniff_content_type(content) or attachment.content_type or "image/jpeg"
            files.append(OutgoingFile(attachment.filename, content, content_type, index))
            seen.add(index)
        if files:
            batches.append(files)
    delivered = len(job.images) or job.request.count
    found = sum(len(files) for files in batches)
    return ResultImages(batches, max(0, delivered - found))


def _first_error_or_all(results: Sequence[T | BaseException]) -> list[T]:
    """gather(return_exceptions=True) results, raising the first error in the sources' order."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]
