"""How results and progress look in Discord."""

from __future__ import annotations

import io

import discord

from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress
from bot.core.quota import Period, QuotaStatus
from bot.storage.jobs import JobRecord

EMBED_COLOUR = discord.Colour(0x5865F2)


def progress_text(progress: Progress) -> str:
    if progress.state == "queued":
        return f"⏳ Queued — position {progress.position} in line."
    if progress.total > 1:
        return f"🎨 Generating… {progress.done} of {progress.total} images ready."
    return "🎨 Generating your image…"


def image_range(batch: ResultBatch) -> str:
    numbers = [file.index + 1 for file in batch.files]
    if len(numbers) == 1:
        return f"{numbers[0]} of {batch.total_expected}"
    return f"{numbers[0]}–{numbers[-1]} of {batch.total_expected}"


def result_embed(batch: ResultBatch, *, model: str, quota_note: str | None = None) -> discord.Embed:
    request = batch.job.request
    embed = discord.Embed(description=_clip(request.prompt, 4000), colour=EMBED_COLOUR)
    embed.set_author(name="Seedream")
    actual = sorted({batch.sizes[f.index] for f in batch.files if f.index in batch.sizes})
    size = request.size
    if actual and actual != [size]:
        size = f"{size} → {', '.join(actual)}"
    embed.add_field(name="Size", value=_clip(size, 1024))
    embed.add_field(name="Model", value=_clip(model, 1024))
    embed.add_field(name="Time", value=f"{batch.elapsed:.1f} s")
    if batch.total_expected > 1:
        embed.add_field(name="Images", value=image_range(batch))
    if any(file.reencoded for file in batch.files):
        embed.add_field(name="Note", value="Re-encoded to fit Discord's upload limit.", inline=False)
    if quota_note:
        embed.add_field(name="Quota", value=quota_note)
    source = source_url(batch.job)
    if source:
        embed.add_field(name="From", value=source, inline=False)
    embed.set_footer(text=f"Job {batch.job.id}")
    return embed


def source_url(job: JobRecord) -> str | None:
    """The jump link to the message a derived job (edit, upscale, reroll…) came from."""
    if job.source_message_id is None or job.channel_id is None:
        return None
    # `Message.jump_url` needs a message object; a stored job has its ids only, so the same
    # link is spelled out here (discord.py builds it the same way).
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.source_message_id}"


def outcome_text(outcome: JobOutcome) -> str:
    """The summary that replaces the progress message once a job has ended."""
    asked = outcome.job.request.count
    lines = []
    if outcome.delivered:
        noun = "image" if outcome.delivered == 1 else "images"
        lines.append(f"✅ Done in {outcome.elapsed:.1f} s — {outcome.delivered} {noun} (job `{outcome.job.id}`).")
        if outcome.delivered < asked and not outcome.failures and not outcome.undelivered:
            lines.append(f"The model returned {outcome.delivered} of the {asked} images asked for.")
    else:
        reason = outcome.error.user_message if outcome.error else "No image was produced."
        lines.append(f"❌ {reason}")
    if outcome.failures and outcome.delivered:
        blocked = len(outcome.failures)
        lines.append(f"{blocked} image{'s' if blocked > 1 else ''} failed: {outcome.failures[0].error.user_message}")
    if outcome.undelivered:
        lines.append(
            f"⚠️ {outcome.undelivered} image(s) were generated but could not be posted here; "
            f"check my permissions (Send Messages, Attach Files)."
        )
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_files(batch: ResultBatch) -> list[discord.File]:
    """Fresh File objects for each attempt: a File's stream is consumed by a send."""
    return [discord.File(io.BytesIO(f.content), filename=f.filename) for f in batch.files]


def quota_note(status: QuotaStatus) -> str | None:
    """What the result embed says about the requester's remaining images."""
    if status.remaining is None:
        return None
    when = "today" if status.period is Period.DAILY else f"this {status.period.noun}"
    return f"{status.remaining} image{'s' if status.remaining != 1 else ''} left {when}"

