"""Discord attachments in, validated reference images out (for every way in to an edit).

Two steps, so members hear about most mistakes before anything is downloaded:

1. `plan_request` checks what needs no download (prompt, size, count, how many references,
   each image's declared size) and builds the `GenerationRequest` with placeholder references.
2. `attach_references` downloads each image with `attachment.read()`, validates the bytes
   (bot/core/images/references.py: type, bytes, dimensions, aspect ratio) and swaps in what the relay gets:
   data URIs (`REFERENCE_TRANSPORT=data_uri`, works with any relay) or the Discord CDN URLs
   (`url`, for relays that can fetch them). It also returns the job's `extra` JSON.

Reference descriptors, stored in the job's request JSON as ``request["references"]`` (a list in
the order the relay received the images; the Reroll button reads it)::

    {"message_id": int | None,   # the message holding the image; None for a slash-command upload
     "channel_id": int | None,   # where that message (or the command) was
     "attachment_id": int,
     "filename": str,
     "url": str}                 # the CDN URL at request time (signed: it expires after a while)

To use the same images again, fetch `message_id` in `channel_id` and pick `attachment_id`
(fresh URL); a slash-command upload has no message, so only its `url` is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import aiohttp
import discord

from bot.config import Settings
from bot.core.errors import UserFacingError
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
from bot.core.jobs.requests import build_request
from bot.core.relay.models import GenerationRequest

Transport = Literal["data_uri", "url"]
T = TypeVar("T")

DOWNLOAD_TIMEOUT = 60.0  # seconds for one image from Discord's CDN
# For attachments that arrive without a content type (the bytes decide in the end).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class ReferenceUnavailable(UserFacingError):
    """An image could not be downloaded from Discord; `user_message` is safe for Discord."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"I couldn't download “{display_name(name)}” from Discord. "
            "Please try again, or upload the image again."
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

    def descriptor(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "channel_id": self.channel_id,
            "attachment_id": self.attachment.id,
            "filename": self.attachment.filename,
            "url": self.attachment.url,
        }


@dataclass(frozen=True)
class PreparedReferences:
    references: tuple[str, ...]  # for GenerationRequest.references, in order
    descriptors: list[dict[str, Any]]  # for JobSpec.extra["references"]


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
    count: int = 1,
    watermark: bool | None = None,
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
    )


async def attach_references(
    request: GenerationRequest, sources: Sequence[ReferenceSource], *, transport: Transport
) -> tuple[GenerationRequest, dict[str, Any]]:
    """The planned request with its checked references, and the `JobSpec.extra` recording them."""
    if not sources:
        return request, {"references": []}
    prepared = await prepare_references(sources, transport=transport)
    return replace(request, references=prepared.references), {"references": prepared.descriptors}


async def prepare_references(
    sources: Sequence[ReferenceSource], *, transport: Transport, rules: ReferenceRules = DEFAULT_RULES
) -> PreparedReferences:
    """Download and validate every image (the first bad one, in order, is reported), then encode."""
    check_sources(sources, rules)
    contents = _first_error_or_all(await asyncio.gather(
        *(_download(source, rules) for source in sources), return_exceptions=True
    ))
    images: list[ReferenceImage] = _first_error_or_all(await asyncio.gather(
        *(inspect_reference(source.name, content, rules) for source, content in zip(sources, contents, strict=True)),
        return_exceptions=True,
    ))
    if transport == "data_uri":
        references = await encode_references(images)
    else:
        references = tuple(source.attachment.url for source in sources)
    return PreparedReferences(references, [source.descriptor() for source in sources])


async def _download(source: ReferenceSource, rules: ReferenceRules) -> bytes:
    try:
        async with asyncio.timeout(DOWNLOAD_TIMEOUT):
            content = await source.attachment.read()
    except (discord.DiscordException, aiohttp.ClientError, TimeoutError):
        raise ReferenceUnavailable(source.name) from None
    check_byte_size(source.name, len(content), rules)  # the declared size may have been wrong
    return content


def _first_error_or_all(results: Sequence[T | BaseException]) -> list[T]:
    """gather(return_exceptions=True) results, raising the first error in the sources' order."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]

