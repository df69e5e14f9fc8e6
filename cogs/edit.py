"""Editing images already in the channel: the "Edit with Seedream" message menu, and replies.

Context menu: Apps → "Edit with Seedream" on any message with images opens a modal for the
prompt (and an optional size); every image of that message is a reference, in order.

Replies: a member replies to a message with images and writes what to change. Which replies
count (the Message Content intent decides what the bot can read):

- a reply that @mentions the bot, to any message with images;
- with `MESSAGE_CONTENT_INTENT=true`, also any reply to one of the bot's own image messages.

Images attached to the reply come after the replied-to message's images. The bot answers as a
reply to the member's message; refusals are replies too, pinging only that member.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import UserFacingError
from bot.core.i18n import tr, trn
from bot.discord_ui.attachments import (
    ReferenceSource,
    attach_references,
    check_sources,
    message_sources,
    plan_request,
)
from bot.discord_ui.confirm import confirm_and_defer, confirm_reply
from bot.discord_ui.edit_modal import EditPromptModal
from bot.discord_ui.locales import member_locale
from bot.discord_ui.message_target import reply_to
from bot.discord_ui.replies import explain
from bot.discord_ui.requester import job_spec
from bot.discord_ui.slash_jobs import run_slash_job

if TYPE_CHECKING:
    from bot.app import SeedreamBot

log = logging.getLogger(__name__)

MENU_NAME = "Edit with Seedream"
NO_IMAGES = tr(
    "That message has no images to edit. Use “Edit with Seedream” on a message with images "
    "attached, or `/imagine` with a `reference` image."
)
HIDDEN_IMAGES = tr(
    "I can't see the images of that message: without the Message Content intent Discord only "
    "shows me messages that mention me. Use Apps → “Edit with Seedream” on it instead."
)
ASK_FOR_PROMPT = tr("Tell me what to change: reply to the image with a prompt, e.g. “make it a snowy night”.")


class Edit(commands.Cog):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot
        # Context menus cannot be Cog methods: build one from a bound method instead.
        self.menu = app_commands.guild_only(
            app_commands.ContextMenu(name=MENU_NAME, callback=self.edit_with_seedream)
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # -- the context menu and its modal ------------------------------------------------------

    async def edit_with_seedream(self, interaction: discord.Interaction[SeedreamBot],
                                 message: discord.Message) -> None:
        sources = message_sources(message)
        if not sources:
            raise UserFacingError(NO_IMAGES)
        check_sources(sources)
        count = len(sources)
        modal = EditPromptModal(
            title=trn("Edit the image with Seedream", "Edit {count} images with Seedream", count).render(
                member_locale(interaction)),
            submit=lambda modal_interaction, prompt, size: self.submit_edit(
                modal_interaction, message, sources, prompt, size
            ),
            max_prompt_length=self.bot.settings.max_prompt_length,
            size_hint=(await self.bot.preferences.get(interaction.user.id)).size or self.bot.settings.default_size,
            placeholder=tr("e.g. make it a snowy night, keep the cat as it is"),
            locale=member_locale(interaction),
        )
        await interaction.response.send_modal(modal)  # a modal must come first

    async def submit_edit(self, interaction: discord.Interaction[Any], target: discord.Message,
                          sources: list[ReferenceSource], prompt: str, size: str | None) -> None:
        request = plan_request(self.bot.settings, prompt=prompt, requester_id=interaction.user.id,
                               sources=sources, size=size,
                               preferences=await self.bot.preferences.get(interaction.user.id))
        asked = await confirm_and_defer(interaction, request.count)
        if asked is not None:
            await run_slash_job(asked, kind="edit", request=request, sources=sources, source_message_id=target.id)

    # -- replies ------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        reference = message.reference
        if (message.author.bot or message.guild is None or self.bot.user is None
                or message.type is not discord.MessageType.reply
                or reference is None or reference.message_id is None):
            return
        me = self.bot.user.id
        mentioned = any(user.id == me for user in message.mentions)
        if not mentioned and not self.bot.intents.message_content:
            return  # Discord shows us neither the prompt nor the images
        replied = reference.resolved if isinstance(reference.resolved, discord.Message) else None
        try:
            await self._reply_edit(message, reference.message_id, replied, mentioned=mentioned)
        except Exception as error:  # every refusal is answered where the member asked
            text = explain(error, "a reply edit")
            try:
                await reply_to(message, text)
            except discord.HTTPException:
                log.warning("could not answer message %s", message.id, exc_info=True)

    async def _reply_edit(self, message: discord.Message, replied_id: int, replied: discord.Message | None,
                          *, mentioned: bool) -> None:
        me = self.bot.user.id if self.bot.user else 0
        typed_mention = re.search(rf"<@!?{me}>", message.content) is not None
        if replied is None:  # Discord left it out of the event
            replied = await self._fetch(message, replied_id, quiet=not typed_mention)
            if replied is None:
                return
        from_bot = replied.author.id == me
        if not (mentioned or from_bot):
            return  # with the intent, replies to other members' messages still need a mention
        if not message_sources(replied) and not from_bot and not self.bot.intents.message_content:
            # The event hides the images of a message that does not mention us; the API may not.
            replied = await self._fetch(message, replied_id, quiet=not typed_mention) or replied
        replied_sources = message_sources(replied)
        if not replied_sources:
            if not typed_mention:
                return  # e.g. a reply-ping to one of the bot's text messages
            hidden = not (from_bot or self.bot.intents.message_content or replied.content
                          or replied.attachments or replied.embeds)
            raise UserFacingError(HIDDEN_IMAGES if hidden else NO_IMAGES)
        prompt = re.sub(rf"<@!?{me}>", " ", message.content).strip()
        if not prompt:
            raise UserFacingError(ASK_FOR_PROMPT)
        sources = replied_sources + message_sources(message)
        request = plan_request(self.bot.settings, prompt=prompt, requester_id=message.author.id, sources=sources,
                               preferences=await self.bot.preferences.get(message.author.id))
        if not await confirm_reply(self.bot, message, request.count):
            return
        with contextlib.suppress(discord.HTTPException):
            await message.channel.typing()  # while the images download
        request, references = await attach_references(request, sources,
                                                       transport=self.bot.settings.reference_transport)
        # A reply to a result (or to a /show re-post) names the job it came from, like a button's edit.
        parent = await self.bot.jobs.job_for_message(replied.id) if from_bot else None
        spec = job_spec(message, kind="edit", request=request, references=references, source_message_id=replied.id,
                        parent_job_id=parent.id if parent else None)
        await self.bot.start_job(message, spec)

    async def _fetch(self, message: discord.Message, message_id: int, *, quiet: bool) -> discord.Message | None:
        try:
            return await message.channel.fetch_message(message_id)
        except discord.NotFound:
            if quiet:
                return None
            raise UserFacingError(tr("I can't find the message you replied to.")) from None
        except discord.Forbidden:
            if quiet:
                return None
            raise UserFacingError(
                tr("I can't read the message you replied to: I need the Read Message History permission here.")
            ) from None


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Edit(bot))
