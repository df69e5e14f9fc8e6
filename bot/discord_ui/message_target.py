"""Delivers a job that a plain message asked for (the reply flow): there is no interaction.

Progress lives in one "working on it" reply to the member's message, edited as the job moves
(sparingly: channel edits share the channel's rate limit). The images are posted as replies to
the member's message that ping only that member; the final summary replaces the progress text.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.core.i18n import render
from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress, ProgressThrottle
from bot.discord_ui.filling import FillingMessage
from bot.discord_ui.locales import server_locale
from bot.discord_ui.rendering import outcome_text, progress_text, result_embed, result_files
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.result_view import result_view
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

DEFAULT_FILE_LIMIT = 10 * 1024 * 1024


def only_author(message: discord.Message) -> discord.AllowedMentions:
    """Ping the member being answered and nobody else (prompts and filenames may hold mentions)."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[message.author], replied_user=True)


async def reply_to(message: discord.Message, text: str, **kwargs: Any) -> discord.Message:
    """Answer `message` as a reply that pings only its author, even if it was deleted meanwhile.

    A plain message carries no locale, so a `Text` is said in the server's language.
    """
    return await message.channel.send(
        render(text, server_locale(message.guild)),
        reference=message.to_reference(fail_if_not_exists=False),
        allowed_mentions=only_author(message),
        **kwargs,
    )


class MessageTarget:
    """A `bot.core.jobs.runner.DeliveryTarget` for a job requested by `request` (a member's message)."""

    def __init__(self, request: discord.Message, *, model: str, quota_note: str | None = None,
                 progress_interval: float = 1.5) -> None:
        self._request = request
        self._model = model
        self._quota_note = quota_note
        self._throttle = ProgressThrottle(progress_interval)
        self._status: discord.Message | None = None
        self._shown: str | None = None
        self._lock = asyncio.Lock()
        self._filling = FillingMessage(model=model, quota_note=quota_note)

    def file_limit(self) -> int:
        guild = self._request.guild
        return guild.filesize_limit if guild is not None else DEFAULT_FILE_LIMIT

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        if not self._throttle.allow(progress):
            return
        await self._show(progress_text(progress, job.request.locale))

    async def send_images(self, batch: ResultBatch) -> list[int]:
        """Add the images to the set's current message when they fit there (no new id), else post one."""
        if await self._filling.add(batch):
            return []
        embed = result_embed(batch, model=self._model, quota_note=self._quota_note)
        message = await self._request.channel.send(
            embed=embed,
            files=result_files(batch),
            view=result_view(batch.job.id, [file.index for file in batch.files], batch.job.request.locale),
            reference=self._request.to_reference(fail_if_not_exists=False),
            allowed_mentions=only_author(self._request),
        )
        self._filling.begin(message, batch)
        return [message.id]

    async def finished(self, outcome: JobOutcome) -> None:
        await self._show(outcome_text(outcome), final=True)

    async def _show(self, text: str, *, final: bool = False) -> None:
        """Post the status reply the first time, edit it afterwards (a new one if it was deleted)."""
        async with self._lock:
            if text == self._shown:
                return  # each edit is a request to Discord: skip those that say nothing new
            self._shown = text
            if self._status is not None:
                try:
                    self._status = await self._status.edit(content=text, allowed_mentions=NO_PINGS)
                    return
                except discord.NotFound:
                    self._status = None
                    if not final:
                        return
            self._status = await self._request.channel.send(
                text,
                reference=self._request.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_PINGS,
            )
