"""How results and progress look in Discord."""

from __future__ import annotations

import io

import discord

from bot.core.i18n import Text, join, render, tr, trn
from bot.core.jobs.delivery import JobOutcome, ResultBatch
from bot.core.jobs.progress import Progress
from bot.core.quota import QuotaStatus
from bot.storage.jobs import JobRecord

EMBED_COLOUR = discord.Colour(0x5865F2)


def progress_text(progress: Progress, locale: str | None) -> str:
    if progress.state == "queued":
        return tr("⏳ Queued — position {position} in line.", position=progress.position).render(locale)
    if progress.resumed:
        if progress.total > 1:
            return tr("🔁 Resumed after a restart — {done} of {total} images ready.", done=progress.done,
                      total=progress.total).render(locale)
        return tr("🔁 Resumed after a restart — generating your image…").render(locale)
    if progress.total > 1:
        return tr("🎨 Generating… {done} of {total} images ready.", done=progress.done,
                  total=progress.total).render(locale)
    return tr("🎨 Generating your image…").render(locale)


def image_range(batch: ResultBatch) -> Text:
    numbers = [file.index + 1 for file in batch.files]
    if len(numbers) == 1:
        return tr("{number} of {total}", number=numbers[0], total=batch.total_expected)
    return tr("{first}–{last} of {total}", first=numbers[0], last=numbers[-1], total=batch.total_expected)


def result_embed(batch: ResultBatch, *, model: str, quota_note: str | None = None) -> discord.Embed:
    """The result's embed, in the language of the member who asked (stored with the job)."""
    request = batch.job.request
    locale = request.locale
    embed = discord.Embed(description=_clip(request.prompt, 4000), colour=EMBED_COLOUR)
    embed.set_author(name="Seedream")
    actual = sorted({batch.sizes[f.index] for f in batch.files if f.index in batch.sizes})
    size = request.size
    if actual and actual != [size]:
        size = f"{size} → {', '.join(actual)}"
    embed.add_field(name=tr("Size").render(locale), value=_clip(size, 1024))
    embed.add_field(name=tr("Model").render(locale), value=_clip(model, 1024))
    embed.add_field(name=tr("Time").render(locale), value=f"{batch.elapsed:.1f} s")
    if batch.total_expected > 1:
        embed.add_field(name=tr("Images").render(locale), value=image_range(batch).render(locale))
    if any(file.reencoded for file in batch.files):
        note = tr("Re-encoded to fit Discord's upload limit.")
        embed.add_field(name=tr("Note").render(locale), value=note.render(locale), inline=False)
    if quota_note:
        embed.add_field(name=tr("Quota").render(locale), value=render(quota_note, locale))
    source = source_url(batch.job)
    if source:
        embed.add_field(name=tr("From").render(locale), value=source, inline=False)
    embed.set_footer(text=tr("Job {job}", job=batch.job.id).render(locale))
    return embed


def source_url(job: JobRecord) -> str | None:
    """The jump link to the message a derived job (edit, upscale, reroll…) came from."""
    if job.source_message_id is None or job.channel_id is None:
        return None
    # `Message.jump_url` needs a message object; a stored job has its ids only, so the same
    # link is spelled out here (discord.py builds it the same way).
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.source_message_id}"


def outcome_text(outcome: JobOutcome) -> str:
    """The summary that replaces the progress message once a job has ended, in the job's language."""
    asked = outcome.job.request.count
    lines: list[Text | str] = []
    if outcome.delivered:
        lines.append(trn("✅ Done in {elapsed:.1f} s — {count} image (job `{job}`).",
                         "✅ Done in {elapsed:.1f} s — {count} images (job `{job}`).", outcome.delivered,
                         elapsed=outcome.elapsed, job=outcome.job.id))
        if outcome.delivered < asked and outcome.error is not None:  # e.g. interrupted too often
            lines.append(outcome.error.user_message)
        elif outcome.delivered < asked and not outcome.failures and not outcome.undelivered:
            lines.append(tr("The model returned {delivered} of the {asked} images asked for.",
                            delivered=outcome.delivered, asked=asked))
    else:
        reason = outcome.error.user_message if outcome.error else tr("No image was produced.")
        lines.append(tr("❌ {reason}", reason=reason))
    if outcome.failures and outcome.delivered:
        blocked = len(outcome.failures)
        lines.append(trn("{count} image failed: {reason}", "{count} images failed: {reason}", blocked,
                         reason=outcome.failures[0].error.user_message))
    if outcome.undelivered:
        lines.append(tr(
            "⚠️ {count} image(s) were generated but could not be posted here; "
            "check my permissions (Send Messages, Attach Files).", count=outcome.undelivered
        ))
    return join(lines, "\n").render(outcome.job.request.locale)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_files(batch: ResultBatch) -> list[discord.File]:
    """Fresh File objects for each attempt: a File's stream is consumed by a send."""
    return [discord.File(io.BytesIO(f.content), filename=f.filename) for f in batch.files]


def quota_note(status: QuotaStatus) -> Text | None:
    """What the result embed says about the requester's remaining images."""
    if status.remaining is None:
        return None
    return trn("{count} image left {period}", "{count} images left {period}", status.remaining,
               period=status.period.this)

