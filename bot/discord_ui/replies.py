"""Answering an interaction whatever state it is in: response, followup, or channel."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

import discord

from bot.core.errors import UserFacingError
from bot.core.i18n import render, tr
from bot.discord_ui.locales import member_locale

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()


def explain(error: BaseException, where: str) -> str:
    """What to tell a member about an error: its own `user_message`, or a logged reference."""
    if isinstance(error, UserFacingError):
        return error.user_message
    reference = secrets.token_hex(3)
    log.error("unexpected error in %s (ref %s)", where, reference, exc_info=error)
    return tr("Something went wrong on my side (reference `{reference}`). Please try again.", reference=reference)


async def reply_privately(interaction: discord.Interaction[Any], message: str) -> None:
    """Tell the member something only they should see, in their language; never raises."""
    message = render(message, member_locale(interaction))
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True, allowed_mentions=NO_PINGS)
        elif not interaction.is_expired():
            if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
                # The first followup would replace the public "thinking…" message and ignore
                # the ephemeral flag, so remove the placeholder first.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_PINGS)
        elif isinstance(interaction.channel, discord.abc.Messageable):
            mention = discord.AllowedMentions(users=[interaction.user])
            await interaction.channel.send(f"{interaction.user.mention} {message}", allowed_mentions=mention)
    except discord.HTTPException:
        log.warning("could not deliver a reply to %s", interaction.user.id, exc_info=True)
