"""Which language a message speaks: the member's own locale, else the server's."""

from __future__ import annotations

from typing import Any

import discord


def member_locale(interaction: discord.Interaction[Any]) -> str:
    """The locale of the member's Discord client (`interaction.locale`)."""
    return str(interaction.locale)


def server_locale(guild: discord.Guild | None) -> str | None:
    """The server's `guild_locale` (its Community language), for messages that answer no one."""
    return str(guild.preferred_locale) if guild is not None else None


def asking_locale(asked: discord.Interaction[Any] | discord.Message) -> str | None:
    """The locale to answer `asked` in: a plain message carries no locale, so the server's."""
    if isinstance(asked, discord.Message):
        return server_locale(asked.guild)
    return member_locale(asked)
