"""What every generating slash command and modal does once it has acknowledged the interaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.i18n import render
from bot.core.images.sizes import suggest_sizes
from bot.core.relay.models import GenerationRequest
from bot.discord_ui.attachments import ReferenceSource, attach_references, plan_request
from bot.discord_ui.confirm import confirm_and_defer
from bot.discord_ui.locales import member_locale
from bot.discord_ui.requester import job_spec

if TYPE_CHECKING:
    from bot.app import SeedreamBot


SIZE_HELP = "1K, 2K, 4K or WIDTHxHEIGHT, e.g. 2848x1600"


async def generate(
    interaction: discord.Interaction[SeedreamBot],
    *,
    kind: str,
    prompt: str,
    attachments: Sequence[discord.Attachment] = (),
    size: str | None = None,
    count: int | None = None,
    watermark: bool | None = None,
    variations: bool = False,
) -> None:
    """/imagine and /blend: check the options, acknowledge, then run the job with these uploads."""
    sources = [ReferenceSource(attachment, None, interaction.channel_id) for attachment in attachments]
    request = plan_request(
        interaction.client.settings,
        prompt=prompt,
        requester_id=interaction.user.id,
        sources=sources,
        size=size,
        count=count,
        watermark=watermark,
        preferences=await interaction.client.preferences.get(interaction.user.id),
        variations=variations,
    )
    asked = await confirm_and_defer(interaction, request.count)
    if asked is not None:
        await run_slash_job(asked, kind=kind, request=request, sources=sources)


async def run_slash_job(
    interaction: discord.Interaction[SeedreamBot],
    *,
    kind: str,
    request: GenerationRequest,
    sources: Sequence[ReferenceSource],
    source_message_id: int | None = None,
) -> None:
    """Download and check the references, then store, reserve and queue the job."""
    bot = interaction.client
    request, references = await attach_references(request, sources, transport=bot.settings.reference_transport)
    # An edit of a result (or of a /show re-post) names the job it came from, like a button's edit.
    parent = await bot.jobs.job_for_message(source_message_id) if source_message_id is not None else None
    spec = job_spec(interaction, kind=kind, request=request, references=references,
                    source_message_id=source_message_id, parent_job_id=parent.id if parent else None)
    await bot.start_job(interaction, spec)


async def size_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The `size` option's suggestions: tiers, common ratios, and what was typed if valid (in the member's words)."""
    locale = member_locale(interaction)
    return [app_commands.Choice(name=render(label, locale), value=value) for label, value in suggest_sizes(current)]
