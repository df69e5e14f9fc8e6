"""The command tree: one place that turns every error into a clear, private answer."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.errors import UserFacingError
from bot.core.i18n import tr
from bot.discord_ui.replies import explain, reply_privately


def describe_error(error: app_commands.AppCommandError) -> str | None:
    """The member-facing text for an error (a `Text` where ours), or None when it is unexpected."""
    original: BaseException = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, UserFacingError):
        return original.user_message
    if isinstance(error, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return tr("You need the {permission} permission to use this.", permission=needed)
    if isinstance(error, app_commands.BotMissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return tr("I need the {permission} permission in this channel. Please ask a server admin.", permission=needed)
    if isinstance(error, app_commands.NoPrivateMessage):
        return tr("This command only works in a server.")
    if isinstance(error, app_commands.CommandOnCooldown):
        return tr("Slow down a little: try again in {seconds:.0f} s.", seconds=error.retry_after)
    if isinstance(error, app_commands.CheckFailure):
        return tr("You can't use this command here.")
    if isinstance(error, (app_commands.CommandSignatureMismatch, app_commands.CommandNotFound)):
        return tr("This command is out of date. Please ask the bot's owner to sync the commands.")
    if isinstance(error, app_commands.TransformerError):
        return tr("I couldn't understand the value {value}.", value=repr(error.value))
    return None


class SeedreamTree(app_commands.CommandTree[Any]):
    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        message = describe_error(error)
        if message is None:
            command = interaction.command.qualified_name if interaction.command else "?"
            message = explain(error, f"/{command}")
        await reply_privately(interaction, message)
