"""Where a job's results go, as stored with the job, and the targets rebuilt from it.

A job's `delivery` record is what any process needs to finish it: for a slash command or a
button, the interaction's application id, token and id (its 15-minute expiry follows from the
id); for a reply edit, the member's message. The record never leaves the database: the token is
a credential, kept out of reprs and logs, and dropped when the job ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import discord

from bot.core.jobs.naming import image_index
from bot.storage.jobs import JobRecord

log = logging.getLogger(__name__)

DEFAULT_FILE_LIMIT = 10 * 1024 * 1024
INTERACTION_LIFETIME = timedelta(minutes=15)
HISTORY_PAGES = 5  # messages read back (100 a page) when a resumed job looks for its earlier posts

Remember = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class InteractionDelivery:
    interaction_id: int
    application_id: int
    token: str = ""
    channel_id: int | None = None
    guild_id: int | None = None
    user_id: int = 0
    file_limit: int = DEFAULT_FILE_LIMIT  # while the token is valid (the interaction's own limit)
    channel_file_limit: int = DEFAULT_FILE_LIMIT  # afterwards, as the bot (the server's limit)
    original_id: int | None = None  # the deferred reply, once known: channel posts reply to it

    def __repr__(self) -> str:  # never show the token
        return f"InteractionDelivery(interaction_id={self.interaction_id}, channel_id={self.channel_id})"

    @property
    def expires_at(self) -> datetime:
        return discord.utils.snowflake_time(self.interaction_id) + INTERACTION_LIFETIME

    def to_json(self) -> dict[str, Any]:
        return {"via": "interaction", "interaction_id": self.interaction_id, "application_id": self.application_id,
                "token": self.token, "channel_id": self.channel_id, "guild_id": self.guild_id,
                "user_id": self.user_id, "file_limit": self.file_limit,
                "channel_file_limit": self.channel_file_limit, "original_id": self.original_id}

    @classmethod
    def from_interaction(cls, interaction: discord.Interaction[Any]) -> InteractionDelivery:
        guild = interaction.guild
        return cls(
            interaction_id=interaction.id, application_id=interaction.application_id, token=interaction.token,
            channel_id=interaction.channel_id, guild_id=interaction.guild_id, user_id=interaction.user.id,
            file_limit=interaction.filesize_limit,
            channel_file_limit=guild.filesize_limit if guild is not None else DEFAULT_FILE_LIMIT,
        )


@dataclass(frozen=True)
class MessageDelivery:
    """A job a member's message asked for (a reply edit): answers go to that message."""

    message_id: int
    channel_id: int
    guild_id: int | None
    user_id: int
    file_limit: int = DEFAULT_FILE_LIMIT
    status_id: int | None = None  # the "working on it" reply, once posted

    def to_json(self) -> dict[str, Any]:
        return {"via": "message", "message_id": self.message_id, "channel_id": self.channel_id,
                "guild_id": self.guild_id, "user_id": self.user_id, "file_limit": self.file_limit,
                "status_id": self.status_id}

    @classmethod
    def from_message(cls, message: discord.Message) -> MessageDelivery:
        guild = message.guild
        return cls(message_id=message.id, channel_id=message.channel.id, guild_id=guild.id if guild else None,
                   user_id=message.author.id,
                   file_limit=guild.filesize_limit if guild is not None else DEFAULT_FILE_LIMIT)


def parse_delivery(job: JobRecord) -> InteractionDelivery | MessageDelivery:
    """The job's stored delivery record; a job stored without one (before 0006) is answered in
    its channel, as an interaction whose token is long gone."""
    data = dict(job.delivery or {})
    if data.get("via") == "message":
        return MessageDelivery(
            message_id=int(data["message_id"]), channel_id=int(data["channel_id"]),
            guild_id=_optional_int(data.get("guild_id")), user_id=int(data["user_id"]),
            file_limit=int(data.get("file_limit") or DEFAULT_FILE_LIMIT),
            status_id=_optional_int(data.get("status_id")),
        )
    if data.get("via") == "interaction":
        return InteractionDelivery(
            interaction_id=int(data["interaction_id"]), application_id=int(data["application_id"]),
            token=str(data.get("token") or ""), channel_id=_optional_int(data.get("channel_id")),
            guild_id=_optional_int(data.get("guild_id")), user_id=int(data["user_id"]),
            file_limit=int(data.get("file_limit") or DEFAULT_FILE_LIMIT),
            channel_file_limit=int(data.get("channel_file_limit") or DEFAULT_FILE_LIMIT),
            original_id=_optional_int(data.get("original_id")),
        )
    return InteractionDelivery(interaction_id=_snowflake_at(job.created_at), application_id=0, token="",
                               channel_id=job.channel_id, guild_id=job.guild_id, user_id=job.requester_id)


async def find_posted(client: discord.Client, job: JobRecord, channel_id: int | None) -> dict[int, list[int]]:
    """The bot's messages in the job's channel, posted since the job was created, that carry its
    images (message id -> 0-based indices): an interrupted attempt's posts, recorded or not."""
    if channel_id is None or client.user is None:
        return {}
    channel = client.get_partial_messageable(channel_id, guild_id=job.guild_id)
    after = discord.Object(_snowflake_at(job.created_at - timedelta(seconds=5)))
    found: dict[int, list[int]] = {}
    async for message in channel.history(limit=HISTORY_PAGES * 100, after=after, oldest_first=True):
        if message.author.id != client.user.id:
            continue
        indices = [index for attachment in message.attachments
                   if (index := image_index(attachment.filename, job.id)) is not None]
        if indices:
            found[message.id] = sorted(indices)
    return found


def mention(user_id: int) -> tuple[str, discord.AllowedMentions]:
    """`<@user>` and the allowed mentions that ping only that member."""
    return f"<@{user_id}>", discord.AllowedMentions(users=[discord.Object(user_id)], replied_user=False)


def result_nonce(job_id: str, indices: Sequence[int]) -> str:
    """The nonce of a channel post carrying these images: with `enforce_nonce`, Discord answers
    a repeat of the post (a retry after a crash) with the message already created."""
    return f"sd{job_id}{indices[0] if indices else 0}"[:25]


def _snowflake_at(moment: datetime) -> int:
    return discord.utils.time_snowflake(moment)


def _optional_int(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None
