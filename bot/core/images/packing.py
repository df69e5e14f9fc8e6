"""Fit a job's images into as few Discord messages as the upload limits allow.

Discord checks each attachment against the channel's limit (`attachment_size_limit`,
`guild.filesize_limit`: 10 MiB unless boosted), refuses more than 10 files in a message
and a whole request above about 25 MiB. An image that fits is sent byte-identical;
one that alone is too large is re-encoded as JPEG (off the event loop), never dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.format import megabytes
from bot.core.i18n import tr
from bot.core.images.reencode import DeliveryError, ImageTooLarge, UnreadableImage, fit_jpeg
from bot.core.images.sniff import sniff_content_type
from bot.core.jobs.naming import result_filename

__all__ = [
    "DEFAULT_REQUEST_BUDGET",
    "DEFAULT_SAFETY_MARGIN",
    "PART_OVERHEAD",
    "DeliveryError",
    "ImageLike",
    "ImageTooLarge",
    "OutgoingFile",
    "UnreadableImage",
    "fit_images",
]

DEFAULT_REQUEST_BUDGET = 25 * 2**20
# Kept free below each limit for the multipart framing, payload_json, content and embeds.
DEFAULT_SAFETY_MARGIN = 64 * 1024
# Counted per file against the request budget: the part's headers and its attachments entry.
PART_OVERHEAD = 512
MAX_FILES_PER_MESSAGE = 10



class ImageLike(Protocol):
    """What `fit_images` needs of an image (`bot.core.relay.models.GeneratedImage` fits)."""

    @property
    def index(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...


@dataclass(frozen=True)
class OutgoingFile:
    """One attachment to upload. `index` is the image's position in the job (0-based)."""

    filename: str
    content: bytes
    content_type: str
    index: int
    reencoded: bool = False


async def fit_images(
    images: Sequence[ImageLike],
    *,
    job_id: str,
    file_limit: int,
    max_files_per_message: int = MAX_FILES_PER_MESSAGE,
    request_budget: int = DEFAULT_REQUEST_BUDGET,
    safety_margin: int = DEFAULT_SAFETY_MARGIN,
) -> list[list[OutgoingFile]]:
    """Return the images, in order, grouped into messages Discord will accept.

    Each message holds at most `max_files_per_message` files whose bytes (plus
    `PART_OVERHEAD` each) stay within `request_budget - safety_margin`; each file stays
    within `file_limit - safety_margin`. Raises `ImageTooLarge` or `UnreadableImage`
    (with `index` set) when an image cannot be made to fit; no image is ever left out.
    """
    if not 1 <= max_files_per_message <= MAX_FILES_PER_MESSAGE:
        raise ValueError(f"max_files_per_message must be between 1 and {MAX_FILES_PER_MESSAGE}")
    message_budget = request_budget - safety_margin
    file_budget = min(file_limit - safety_margin, message_budget - PART_OVERHEAD)
    if file_budget <= 0:
        raise ValueError("file_limit and request_budget leave no room for any image")

    files = await asyncio.gather(
        *(_fit_one(image, job_id=job_id, file_budget=file_budget, file_limit=file_limit) for image in images)
    )
    return _pack(files, max_files=max_files_per_message, message_budget=message_budget)


async def _fit_one(image: ImageLike, *, job_id: str, file_budget: int, file_limit: int) -> OutgoingFile:
    if len(image.content) <= file_budget:
        content_type = sniff_content_type(image.content) or image.content_type
        return OutgoingFile(
            filename=result_filename(job_id, image.index, content_type),
            content=image.content,
            content_type=content_type,
            index=image.index,
        )
    number = image.index + 1
    try:
        fitted = await asyncio.to_thread(fit_jpeg, image.content, file_budget)
    except ImageTooLarge as error:
        raise ImageTooLarge(
            tr("Image {number} is too large to upload here, even after shrinking it "
               "(the limit is {limit} per file).", number=number, limit=megabytes(file_limit)),
            index=image.index,
            size=len(image.content),
            limit=file_limit,
        ) from error
    except UnreadableImage as error:
        raise UnreadableImage(
            tr("Image {number} is larger than the upload limit here ({limit}) "
               "and could not be read to shrink it.", number=number, limit=megabytes(file_limit)),
            index=image.index,
        ) from error
    return OutgoingFile(
        filename=result_filename(job_id, image.index, "image/jpeg"),
        content=fitted.content,
        content_type="image/jpeg",
        index=image.index,
        reencoded=True,
    )


def _pack(files: Sequence[OutgoingFile], *, max_files: int, message_budget: int) -> list[list[OutgoingFile]]:
    """Greedy in order; for an order-preserving split this gives the fewest messages."""
    messages: list[list[OutgoingFile]] = []
    current: list[OutgoingFile] = []
    used = 0
    for file in files:
        cost = len(file.content) + PART_OVERHEAD
        if current and (len(current) >= max_files or used + cost > message_budget):
            messages.append(current)
            current, used = [], 0
        current.append(file)
        used += cost
    if current:
        messages.append(current)
    return messages



