"""The permissions the bot needs, and what it has in a channel, computed from REST payloads.

Discord's algorithm (developers/topics/permissions): the owner and Administrator have
everything; otherwise @everyone's and the member's roles' permissions, then the channel's
@everyone overwrite, the member's roles' overwrites together, and the member's own overwrite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import discord

# Images are attachments with an embed; a job that outlives its interaction token is posted to
# the channel (or thread) as a reply to the request, which needs the history to reply to.
NEEDED = discord.Permissions(
    view_channel=True, send_messages=True, send_messages_in_threads=True, embed_links=True,
    attach_files=True, read_message_history=True,
)
SCOPES = ("bot", "applications.commands")
# Channels members can run commands in and the bot posts to: text and announcement channels.
TEXT_CHANNEL_TYPES = frozenset({0, 5})

_NAMES = {
    "view_channel": "View Channel", "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads", "embed_links": "Embed Links",
    "attach_files": "Attach Files", "read_message_history": "Read Message History",
}


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=NEEDED, scopes=SCOPES)


def permission_names(permissions: discord.Permissions) -> list[str]:
    """Portal names of the needed permissions set in `permissions`, in a stable order."""
    return [_NAMES[name] for name, value in permissions if value and name in _NAMES]


def missing(have: discord.Permissions) -> discord.Permissions:
    return discord.Permissions(NEEDED.value & ~have.value)


def base_permissions(guild: Mapping[str, Any], member: Mapping[str, Any], user_id: int) -> discord.Permissions:
    """The member's server-wide permissions (`guild` as GET /guilds/{id} returns it, with roles)."""
    if int(guild["owner_id"]) == user_id:
        return discord.Permissions.all()
    roles = {int(role["id"]): int(role["permissions"]) for role in guild.get("roles") or []}
    value = roles.get(int(guild["id"]), 0)
    for role_id in member.get("roles") or []:
        value |= roles.get(int(role_id), 0)
    permissions = discord.Permissions(value)
    return discord.Permissions.all() if permissions.administrator else permissions


def channel_permissions(base: discord.Permissions, channel: Mapping[str, Any], guild_id: int,
                        member: Mapping[str, Any], user_id: int) -> discord.Permissions:
    """`base` after the channel's permission overwrites."""
    if base.administrator:
        return discord.Permissions.all()
    value = base.value
    overwrites: Sequence[Mapping[str, Any]] = channel.get("permission_overwrites") or []
    by_id = {int(o["id"]): o for o in overwrites}
    if (everyone := by_id.get(guild_id)) is not None:
        value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
    role_ids = {int(r) for r in member.get("roles") or []}
    allow = deny = 0
    for overwrite in overwrites:
        if int(overwrite["type"]) == 0 and int(overwrite["id"]) in role_ids:
            allow |= int(overwrite["allow"])
            deny |= int(overwrite["deny"])
    value = (value & ~deny) | allow
    own = by_id.get(user_id)
    if own is not None and int(own["type"]) == 1:
        value = (value & ~int(own["deny"])) | int(own["allow"])
    return discord.Permissions(value)
