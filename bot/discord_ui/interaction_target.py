"""Delivers a job's progress and images for one interaction, outliving its 15-minute token.

Built from the job's stored `InteractionDelivery` (the interaction's application id, token and
id), so any process can deliver any job, and a job resumed after a restart edits the same
deferred reply. While the token is valid (with a safety margin) everything goes through the
interaction's webhook; afterwards images go to the channel as a reply that mentions the requester.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta

import discord

from bot.core.i18n import trn
from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress, ProgressThrottle
from bot.discord_ui.deliveries import InteractionDelivery, Remember, find_posted, mention, result_nonce
from bot.discord_ui.filling import FillingMessage
from bot.discord_ui.rendering import outcome_text, progress_text, result_embed, result_files
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.result_view import result_view
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

INVALID_TOKEN_CODES = {50027, 10015, 10062}


class InteractionTarget:
    def __init__(self, client: discord.Client, delivery: InteractionDelivery, *, model: str, token_margin: float,
                 quota_note: str | None = None, remember: Remember | None = None,
                 on_fallback: Callable[[], None] | None = None, progress_interval: float = 1.5) -> None:
        self._client = client
        self._on_fallback = on_fallback  # counts results posted to the channel instead (a metric)
        self._delivery = delivery
        self._remember = remember
        self._model = model
        self._quota_note = quota_note
        self._margin = timedelta(seconds=token_margin)
        self._throttle = ProgressThrottle(progress_interval)
        self._token_dead = not delivery.token
        self._was_queued = False
        self._filling = FillingMessage(model=model, quota_note=quota_note)
        self._webhook = discord.Webhook.from_state(
            data={"id": delivery.application_id, "type": 3, "token": delivery.token},
            state=client._connection,  # the bot's own state: views on follow-ups stay dispatchable
        ) if delivery.token else None

    def token_usable(self) -> bool:
        if self._token_dead or self._webhook is None:
            return False
        return discord.utils.utcnow() < self._delivery.expires_at - self._margin

    def file_limit(self) -> int:
        return self._delivery.file_limit if self.token_usable() else self._delivery.channel_file_limit

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
        if progress.resumed:
            return True
        if progress.total <= 1 or progress.done == 0:
            # "thinking…" already says it is generating, unless a queue position is showing.
            return self._was_queued and progress.done == 0
        return True

    async def send_images(self, batch: ResultBatch) -> list[int]:
        """Add the images to the set's current message when they fit there, else post one."""
        if (filled := await self._filling.add(batch)) is not None:
            return [filled]
        message = await self._post_images(batch)
        self._filling.begin(message, batch)
        return [message.id]

    async def find_posted(self, job: JobRecord) -> Mapping[int, Sequence[int]]:
        return await find_posted(self._client, job, self._delivery.channel_id)

    async def _post_images(self, batch: ResultBatch) -> discord.Message:
        webhook = self._webhook

        async def follow_up(embed: discord.Embed, files: list[discord.File], view: discord.ui.View) -> discord.Message:
            assert webhook is not None
            return await webhook.send(embed=embed, files=files, view=view, allowed_mentions=NO_PINGS, wait=True)

        here = trn("here is your image:", "here are your images:", len(batch.files)).render(batch.job.request.locale)
        return await self._deliver(batch, here, follow_up)

    async def send_final(self, batch: ResultBatch, outcome: JobOutcome) -> list[int]:
        """The deferred reply becomes the result: one edit with the summary, images, embed and
        buttons (the job's only request after the defer). Past the token, a reply in the channel."""
        text = outcome_text(outcome)
        webhook = self._webhook

        async def edit_reply(embed: discord.Embed, files: list[discord.File], view: discord.ui.View) -> discord.Message:
            assert webhook is not None
            return await webhook.edit_message(  # type: ignore[call-overload,no-any-return]
                "@original", content=text, embed=embed, attachments=files, view=view, allowed_mentions=NO_PINGS)

        message = await self._deliver(batch, text, edit_reply)
        return [message.id]

    async def _deliver(self, batch: ResultBatch, channel_text: str,
                       through_webhook: Callable[[discord.Embed, list[discord.File], discord.ui.View],
                                                 Awaitable[discord.Message]]) -> discord.Message:
        """The batch's message through the interaction's webhook while its token is good, else
        as a reply in the channel that says `channel_text` and pings the requester."""
        embed = result_embed(batch, model=self._model, quota_note=self._quota_note)
        indices = [file.index for file in batch.files]
        view = result_view(batch.job.id, indices, batch.job.request.locale)
        if self.token_usable() and self._webhook is not None:
            try:
                return await through_webhook(embed, result_files(batch), view)
            except discord.HTTPException as error:
                if not self._is_token_error(error):
                    raise
                log.info("job %s: interaction token no longer valid, posting to the channel", batch.job.id)
        if self._on_fallback is not None:
            self._on_fallback()
        return await self._post_in_channel(channel_text, embed=embed, files=result_files(batch), view=view,
                                           nonce=result_nonce(batch.job.id, indices))

    async def finished(self, outcome: JobOutcome) -> None:
        text = outcome_text(outcome)
        if self.token_usable():
            try:
                await self._edit_original(text, swallow=False, final=True)
                return
            except discord.HTTPException as error:
                if not self._is_token_error(error):
                    raise
        await self._post_in_channel(text)

    async def _edit_original(self, content: str, *, swallow: bool = True, final: bool = False) -> None:
        assert self._webhook is not None
        try:
            # "@original" is the interaction's own reply, as discord.py's edit_original_response
            # addresses it; a webhook built from the stored token has no Interaction to ask.
            message = await self._webhook.edit_message(
                "@original", content=content, allowed_mentions=NO_PINGS)  # type: ignore[call-overload]
        except discord.HTTPException as error:
            if self._is_token_error(error):
                self._token_dead = True
            if not swallow:
                raise
            log.debug("progress edit failed: %s", error)
            return
        if self._delivery.original_id is None:
            self._delivery = dataclasses.replace(self._delivery, original_id=message.id)
            if self._remember is not None and not final:  # a finished job needs no record of it
                await self._remember(self._delivery.to_json())

    def _is_token_error(self, error: discord.HTTPException) -> bool:
        dead = error.code in INVALID_TOKEN_CODES or error.status == 401
        if dead:
            self._token_dead = True
        return dead

    async def _post_in_channel(
        self, text: str, *, embed: discord.Embed | None = None, files: list[discord.File] | None = None,
        view: discord.ui.View | None = None, nonce: str | None = None,
    ) -> discord.Message:
        """Post as the bot, replying to the deferred reply and pinging only the requester."""
        delivery = self._delivery
        if delivery.channel_id is None:
            raise RuntimeError("interaction has no channel to post to")
        channel = self._client.get_partial_messageable(delivery.channel_id, guild_id=delivery.guild_id)
        reference = None
        if delivery.original_id is not None:
            reference = discord.MessageReference(
                message_id=delivery.original_id, channel_id=delivery.channel_id, guild_id=delivery.guild_id,
                fail_if_not_exists=False,
            )
        ping, allowed = mention(delivery.user_id)
        send = functools.partial(
            channel.send,
            f"{ping} {text}",
            embed=embed or discord.utils.MISSING,
            files=files or discord.utils.MISSING,
            view=view or discord.utils.MISSING,
            nonce=nonce,
            allowed_mentions=allowed,
        )
        return await (send(reference=reference) if reference is not None else send())
