"""A set's current result message, filled in place as its images arrive.

Instead of one message per arriving batch, each new image is added to the set's current message
(an edit that keeps the attachments already there) while it holds fewer than ten images and its
attachments stay within one request's upload budget; then the next message starts. The member
watches the set fill in and a busy channel gets one message per ten images, not one per image.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import discord

from bot.core.images.packing import (
    DEFAULT_REQUEST_BUDGET,
    DEFAULT_SAFETY_MARGIN,
    MAX_FILES_PER_MESSAGE,
    PART_OVERHEAD,
    OutgoingFile,
)
from bot.core.jobs.delivery import ResultBatch
from bot.discord_ui.rendering import result_embed, result_files
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.result_view import result_view

log = logging.getLogger(__name__)

MESSAGE_BUDGET = DEFAULT_REQUEST_BUDGET - DEFAULT_SAFETY_MARGIN


def _cost(files: list[OutgoingFile]) -> int:
    return sum(len(file.content) + PART_OVERHEAD for file in files)


class FillingMessage:
    """The message still taking images: what it holds (without the bytes) and how much more fits."""

    def __init__(self, *, model: str, quota_note: str | None) -> None:
        self._model = model
        self._quota_note = quota_note
        self._message: discord.Message | None = None
        self._files: list[OutgoingFile] = []  # contents dropped: only indices and flags are needed
        self._sizes: dict[int, str] = {}
        self._bytes = 0

    def begin(self, message: Any, batch: ResultBatch) -> None:
        """`message` was just posted holding `batch`: the next images go into it while they fit."""
        self._message, self._files, self._sizes, self._bytes = message, [], {}, 0
        self._hold(batch)

    async def add(self, batch: ResultBatch) -> int | None:
        """Add `batch` to the current message and return its id; None when there is none, it is
        full, or the edit failed (the caller then posts a new message)."""
        message = self._message
        if message is None or len(self._files) + len(batch.files) > MAX_FILES_PER_MESSAGE:
            return None
        if self._bytes + _cost(batch.files) > MESSAGE_BUDGET:
            return None
        whole = ResultBatch(batch.job, [*self._files, *batch.files], batch.total_expected, batch.elapsed,
                            {**self._sizes, **batch.sizes})
        try:
            edited = await message.edit(
                embed=result_embed(whole, model=self._model, quota_note=self._quota_note),
                attachments=[*message.attachments, *result_files(batch)],
                view=result_view(batch.job.id, [file.index for file in whole.files], batch.job.request.locale),
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException as error:  # e.g. deleted meanwhile: start a new message
            log.info("job %s: could not add images to message %s (%s)", batch.job.id, message.id, error)
            self._message = None
            return None
        self._message = edited if edited is not None else message
        self._hold(batch)
        return int(message.id)

    def _hold(self, batch: ResultBatch) -> None:
        self._files.extend(dataclasses.replace(file, content=b"") for file in batch.files)
        self._sizes.update(batch.sizes)
        self._bytes += _cost(batch.files)
