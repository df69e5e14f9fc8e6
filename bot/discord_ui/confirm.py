"""A confirm step for big spends: Generate / Cancel, privately, before anything is reserved or sent.

A request for at least `CONFIRM_AT_IMAGES` images is answered first with what it will cost and
what the member has left. Only **Generate** goes on, and its click is the interaction the job then
answers (its public "thinking…" becomes the job's progress message). **Cancel**, or silence until
`CONFIRM_TIMEOUT_SECONDS`, ends it with nothing stored, reserved or sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import discord

from bot.core.i18n import Text, join, tr, trn
from bot.core.quota import DIRECT_MESSAGES, QuotaStatus
from bot.discord_ui.locales import member_locale, server_locale
from bot.discord_ui.message_target import reply_to
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.requester import member_role_ids

if TYPE_CHECKING:
    from bot.app import SeedreamBot

CANCELLED = tr("Cancelled: nothing was reserved or sent.")
STARTED = tr("Started: your images are on their way below.")


class ConfirmSpend(discord.ui.View):
    """The two buttons; `choice` resolves to the Generate click, or None (Cancel or timeout)."""

    def __init__(self, timeout: float, *, only: int | None = None) -> None:
        super().__init__(timeout=timeout)
        self.choice: asyncio.Future[discord.Interaction[Any] | None] = asyncio.get_running_loop().create_future()
        self.timed_out = False
        self._only = only  # on a public question (a reply edit), the one member who may answer

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if self._only is None or interaction.user.id == self._only:
            return True
        await interaction.response.send_message(tr("Only {member} can answer this.", member=f"<@{self._only}>")
                                                .render(member_locale(interaction)), ephemeral=True,
                                                allowed_mentions=NO_PINGS)
        return False

    @discord.ui.button(label="Generate", style=discord.ButtonStyle.success)
    async def generate(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        if not self.choice.done():
            self.choice.set_result(interaction)
            self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        if not self.choice.done():
            self.choice.set_result(None)
            self.stop()
        await interaction.response.edit_message(content=CANCELLED.render(member_locale(interaction)), view=None)

    async def on_timeout(self) -> None:
        if not self.choice.done():
            self.timed_out = True
            self.choice.set_result(None)


def cost_text(images: int, status: QuotaStatus) -> Text:
    """What the member reads above the buttons."""
    parts: list[Text | str] = [
        trn("This asks for **{count} image**; you are charged only for the images delivered.",
            "This asks for **{count} images**; you are charged only for the images delivered.", images)
    ]
    if status.remaining is None:
        parts.append(tr("Your quota here is unlimited."))
    else:
        resets = discord.utils.format_dt(status.resets_at, "R")
        parts.append(trn("You have **{count} image** left (resets {resets}).",
                         "You have **{count} images** left (resets {resets}).", status.remaining, resets=resets))
        if status.remaining < images:
            parts.append(tr("That is fewer than this needs, so it would be refused."))
    parts.append(tr("Generate them?"))
    return join(parts, separator="\n")


async def confirm_and_defer(interaction: discord.Interaction[SeedreamBot],
                            images: int) -> discord.Interaction[SeedreamBot] | None:
    """The interaction the job answers, acknowledged with a public "thinking…"; None: nothing to run.

    Below `CONFIRM_AT_IMAGES` that is `interaction` itself. At or above it, `interaction` is answered
    privately with the cost and the buttons, and the Generate click is returned instead; Cancel or
    the timeout return None (a timed-out question is deleted, so it leaves no trace).
    `interaction` must not have been answered yet.
    """
    bot = interaction.client
    threshold = bot.settings.confirm_at_images
    if threshold == 0 or images < threshold:
        await interaction.response.defer(thinking=True)
        return interaction
    status = await bot.quota.status(interaction.guild_id or DIRECT_MESSAGES, interaction.user.id,
                                    member_role_ids(interaction.user))
    view = ConfirmSpend(bot.settings.confirm_timeout_seconds)
    await interaction.response.send_message(cost_text(images, status).render(member_locale(interaction)), view=view,
                                            ephemeral=True,
                                            allowed_mentions=NO_PINGS)
    chosen = await view.choice
    if chosen is not None:
        await chosen.response.defer(thinking=True)
    with contextlib.suppress(discord.HTTPException):
        if chosen is not None:
            await interaction.edit_original_response(content=STARTED.render(member_locale(interaction)), view=None)
        elif view.timed_out:
            await interaction.delete_original_response()
    return chosen


async def confirm_reply(bot: SeedreamBot, message: discord.Message, images: int) -> bool:
    """The confirm step for a reply edit: Discord has no private answer to a message, so the question
    is a reply only its author can answer. True once they press Generate; Cancel or the timeout
    return False (a timed-out question is deleted)."""
    threshold = bot.settings.confirm_at_images
    if threshold == 0 or images < threshold:
        return True
    status = await bot.quota.status(message.guild.id if message.guild else DIRECT_MESSAGES, message.author.id,
                                    member_role_ids(message.author))
    view = ConfirmSpend(bot.settings.confirm_timeout_seconds, only=message.author.id)
    question = await reply_to(message, cost_text(images, status).render(server_locale(message.guild)), view=view)
    chosen = await view.choice
    with contextlib.suppress(discord.HTTPException):
        if chosen is not None:
            await chosen.response.edit_message(content=STARTED.render(server_locale(message.guild)), view=None)
        elif view.timed_out:
            await question.delete()
    return chosen is not None
