"""Delivers a job that a plain message asked for (the reply flow): there is no interaction.

Progress lives in one "working on it" reply to the member's message, edited as the job moves
(sparingly: channel edits share the channel's rate limit). The images are posted as replies to
the member's message that ping only that member; the final summary replaces the progress text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import discord

from bot.core.i18n import render
from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress, ProgressThrottle
from bot.discord_ui.deliveries import MessageDelivery, Remember, find_posted, result_nonce
from bot.discord_ui.filling import FillingMessage
from bot.discord_ui.locales import server_locale
from bot.discord_ui.rendering import outcome_text, progress_text, result_embed, result_files
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.result_view import result_view
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

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
    """A `DeliveryTarget` for a job requested by a member's message, rebuilt from its stored
    `MessageDelivery` (so any process can deliver it, and a resumed job edits the same status)."""

    def __init__(self, client: discord.Client, delivery: MessageDelivery, *, model: str,
                 quota_note: str | None = None, remember: Remember | None = None,
                 progress_interval: float = 1.5) -> None:
        self._client = client
        self._delivery = delivery
        self._remember = remember
        self._model = model
        self._quota_note = quota_note
        self._throttle = ProgressThrottle(progress_interval)
        self._channel = client.get_partial_messageable(delivery.channel_id, guild_id=delivery.guild_id)
        self._request = self._channel.get_partial_message(delivery.message_id)
        self._status: discord.Message | discord.PartialMessage | None = (
            self._channel.get_partial_message(delivery.status_id) if delivery.status_id else None)
        self._shown: str | None = None
        self._lock = asyncio.Lock()
        self._filling = FillingMessage(model=model, quota_note=quota_note)
        self._allowed = discord.AllowedMentions(everyone=False, roles=False,
                                                users=[discord.Object(delivery.user_id)], replied_user=True)

    def file_limit(self) -> int:
        return self._delivery.file_limit

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        if not self._throttle.allow(progress):
            return
        await self._show(progress_text(progress, job.request.locale))

    async def send_images(self, batch: ResultBatch) -> list[int]:
        """Add the images to the set's current message when they fit there, else post one."""
        if (filled := await self._filling.add(batch)) is not None:
            return [filled]
        embed = result_embed(batch, model=self._model, quota_note=self._quota_note)
        indices = [file.index for file in batch.files]
        message = await self._channel.send(
            embed=embed,
            files=result_files(batch),
            view=result_view(batch.job.id, indices, batch.job.request.locale),
            reference=self._request.to_reference(fail_if_not_exists=False),
            allowed_mentions=self._allowed,
            nonce=result_nonce(batch.job.id, indices),
        )
        self._filling.begin(message, batch)
        return [message.id]

    async def find_posted(self, job: JobRecord) -> Mapping[int, Sequence[int]]:
        return await find_posted(self._client, job, self._delivery.channel_id)

    async def send_final(self, batch: ResultBatch, outcome: JobOutcome) -> list[int]:
        """The images as a reply that pings the member, then the summary on the status reply."""
        posted = await self.send_images(batch)
        await self.finished(outcome)
        return posted

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
            self._status = await self._channel.send(
                text,
                reference=self._request.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_PINGS,
            )
            self._delivery = dataclasses.replace(self._delivery, status_id=self._status.id)
            if self._remember is not None:
                await self._remember(self._delivery.to_json())
