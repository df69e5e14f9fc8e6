"""Small readings of Discord members that commands share."""

from __future__ import annotations

import discord


def member_role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    """The member's role ids (empty outside a guild); @everyone is not a limit-bearing role."""
    if isinstance(user, discord.Member):
        return tuple(role.id for role in user.roles if not role.is_default())
    return ()
