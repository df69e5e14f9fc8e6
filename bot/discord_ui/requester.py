"""Who asked for a job, read from the interaction or message that asked: the one JobSpec builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bot.core.jobs.spec import JobSpec, StoredReference
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.locales import asking_locale


def member_role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    """The member's role ids (empty outside a guild); @everyone is not a limit-bearing role."""
    if isinstance(user, discord.Member):
        return tuple(role.id for role in user.roles if not role.is_default())
    return ()


def job_spec(
    asked: discord.Interaction[Any] | discord.Message,
    *,
    kind: str,
    request: GenerationRequest,
    references: Sequence[StoredReference] = (),
    parent_job_id: str | None = None,
    source_message_id: int | None = None,
    dedupe_key: str | None = None,
) -> JobSpec:
    """The job `asked` (a slash command, a button, a modal, or a reply message) starts."""
    user: discord.User | discord.Member
    guild_id: int | None
    channel_id: int | None
    if isinstance(asked, discord.Message):
        user, guild_id, channel_id = asked.author, (asked.guild.id if asked.guild else None), asked.channel.id
    else:
        user, guild_id, channel_id = asked.user, asked.guild_id, asked.channel_id
    locale = asking_locale(asked)
    return JobSpec(
        kind=kind,
        requester_id=user.id,
        guild_id=guild_id,
        channel_id=channel_id,
        request=request,
        role_ids=member_role_ids(user),
        parent_job_id=parent_job_id,
        source_message_id=source_message_id,
        dedupe_key=dedupe_key,
        references=tuple(references),
        locale=locale,
    )
