"""Delivers a job's progress and images for one interaction, outliving its 15-minute token.

While the token is valid (with a safety margin) everything goes through the interaction's
webhook; afterwards images go to the channel as a reply that mentions the requester.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any

import discord

from bot.core.i18n import trn
from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress, ProgressThrottle
from bot.discord_ui.filling import FillingMessage
from bot.discord_ui.rendering import outcome_text, progress_text, result_embed, result_files
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.result_view import result_view
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

INVALID_TOKEN_CODES = {50027, 10015, 10062}
DEFAULT_FILE_LIMIT = 10 * 1024 * 1024


class InteractionTarget:
    def __init__(self, interaction: discord.Interaction[Any], *, model: str, token_margin: float,
                 quota_note: str | None = None, progress_interval: float = 1.5) -> None:
        self._interaction = interaction
        self._model = model
        self._quota_note = quota_note
        self._margin = timedelta(seconds=token_margin)
        self._throttle = ProgressThrottle(progress_interval)
        self._original_id: int | None = None
        self._token_dead = False
        self._was_queued = False
        self._filling = FillingMessage(model=model, quota_note=quota_note)

    def token_usable(self) -> bool:
        if self._token_dead:
            return False
        return discord.utils.utcnow() < self._interaction.expires_at - self._margin

    def file_limit(self) -> int:
        if self.token_usable():
            return self._interaction.filesize_limit
        guild = self._interaction.guild
        return guild.filesize_limit if guild is not None else DEFAULT_FILE_LIMIT

    async def progress(self, job: JobRecord, progress: Progress) -> None:
        if not self.token_usable() or not self._worth_showing(progress):
            return
        if not self._throttle.allow(progress):
            return
        await self._edit_original(progress_text(progress, job.request.locale))

    def _worth_showing(self, progress: Progress) -> bool:
        """Skip edits that tell the member nothing new (each one is a request to Discord)."""
        if progress.state == "queued":
            self._was_queued = True
            return True
        if progress.total <= 1 or progress.done == 0:
            # "thinking…" already says it is generating, unless a queue position is showing.
            return self._was_queued and progress.done == 0
        return True

    async def send_images(self, batch: ResultBatch) -> list[int]:
        """Add the images to the set's current message when they fit there (no new id), else post one."""
        if await self._filling.add(batch):
            return []
        message = await self._post_images(batch)
        self._filling.begin(message, batch)
        return [message.id]

    async def _post_images(self, batch: ResultBatch) -> discord.Message:
        embed = result_embed(batch, model=self._model, quota_note=self._quota_note)
        view = result_view(batch.job.id, [file.index for file in batch.files], batch.job.request.locale)
        if self.token_usable():
            try:
                return await self._interaction.followup.send(
                    embed=embed, files=result_files(batch), view=view, allowed_mentions=NO_PINGS, wait=True
                )
            except discord.HTTPException as error:
                if not self._is_token_error(error):
                    raise
                log.info("job %s: interaction token no longer valid, posting to the channel", batch.job.id)
        here = trn("here is your image:", "here are your images:", len(batch.files)).render(batch.job.request.locale)
        return await self._post_in_channel(here, embed=embed, files=result_files(batch), view=view)

    async def finished(self, outcome: JobOutcome) -> None:
        text = outcome_text(outcome)
        if self.token_usable():
            try:
                await self._edit_original(text, swallow=False)
                return
            except discord.HTTPException as error:
                if not self._is_token_error(error):
                    raise
        await self._post_in_channel(text)

    async def _edit_original(self, content: str, *, swallow: bool = True) -> None:
        try:
            message = await self._interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)
            self._original_id = message.id
        except discord.HTTPException as error:
            if self._is_token_error(error):
                self._token_dead = True
            if not swallow:
                raise
            log.debug("progress edit failed: %s", error)

    def _is_token_error(self, error: discord.HTTPException) -> bool:
        dead = error.code in INVALID_TOKEN_CODES or error.status == 401
        if dead:
            self._token_dead = True
        return dead

    def _channel(self) -> discord.abc.Messageable:
        channel = self._interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        if self._interaction.channel_id is None:
            raise RuntimeError("interaction has no channel to post to")
        client: discord.Client = self._interaction.client
        return client.get_partial_messageable(self._interaction.channel_id, guild_id=self._interaction.guild_id)

    async def _post_in_channel(
        self, text: str, *, embed: discord.Embed | None = None, files: list[discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> discord.Message:
        """Post as the bot, replying to the request's message and pinging only the requester."""
        user = self._interaction.user
        reference = None
        if self._original_id is not None and self._interaction.channel_id is not None:
            reference = discord.MessageReference(
                message_id=self._original_id,
                channel_id=self._interaction.channel_id,
                guild_id=self._interaction.guild_id,
                fail_if_not_exists=False,
            )
        send = functools.partial(
            self._channel().send,
            f"{user.mention} {text}",
            embed=embed or discord.utils.MISSING,
            files=files or discord.utils.MISSING,
            view=view,
            allowed_mentions=discord.AllowedMentions(users=[user], replied_user=False),
        )
        return await (send(reference=reference) if reference is not None else send())
