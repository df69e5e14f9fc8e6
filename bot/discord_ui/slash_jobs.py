"""What every generating slash command does once it has acknowledged the interaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.core.images.sizes import suggest_sizes
from bot.core.jobs.runner import JobSpec
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.attachments import ReferenceSource, attach_references
from bot.discord_ui.members import member_role_ids

if TYPE_CHECKING:
    from bot.app import SeedreamBot


async def run_slash_job(
    interaction: discord.Interaction[SeedreamBot],
    *,
    kind: str,
    request: GenerationRequest,
    sources: Sequence[ReferenceSource],
) -> None:
    """Download and check the references, then store, reserve and queue the job."""
    bot = interaction.client
    request, extra = await attach_references(request, sources, transport=bot.settings.reference_transport)
    spec = JobSpec(
        kind=kind,
        requester_id=interaction.user.id,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        request=request,
        role_ids=member_role_ids(interaction.user),
        extra=extra,
    )
    await bot.start_job(interaction, spec)


async def size_autocomplete(
    interaction: discord.Interaction[SeedreamBot], current: str
) -> list[app_commands.Choice[str]]:
    """The `size` option's suggestions: tiers, common ratios, and what was typed if valid."""
    return [app_commands.Choice(name=label, value=value) for label, value in suggest_sizes(current)]
