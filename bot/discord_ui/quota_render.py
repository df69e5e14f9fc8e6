"""How quotas read in Discord: `/quota show`, moderators' answers and the audit channel.

Text uses mentions (`<@id>`, `<@&id>`, `<#id>`) that every message sending it must pair with
`AllowedMentions.none()`, and Discord timestamps, which each reader's client shows in their
own time zone, next to the UTC time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import discord
from discord.utils import format_dt

from bot.core.i18n import Text, join, render, tr
from bot.core.quota import GuildQuotaSettings, Period, QuotaStatus
from bot.core.quota.errors import images
from bot.discord_ui.rendering import EMBED_COLOUR
from bot.storage.jobs import JobRecord, JobState

AUDIT_COLOUR = discord.Colour(0xFEE75C)
MAX_LISTED_JOBS = 5


def user(user_id: int) -> str:
    return f"<@{user_id}>"


def role(role_id: int) -> str:
    return f"<@&{role_id}>"


def channel(channel_id: int) -> str:
    return f"<#{channel_id}>"


def utc(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def reset_time(when: datetime) -> str:
    """`<t:…:F> (<t:…:R>) · 2025-01-16 00:00 UTC`."""
    return f"{format_dt(when, 'F')} ({format_dt(when, 'R')}) · {utc(when)}"


def this_period(period: Period) -> Text:
    """`today`, `this week` or `this month`."""
    return period.this


def limit_text(limit: int | None, period: Period) -> Text:
    """`25 images per day`, or `unlimited`."""
    return tr("unlimited") if limit is None else tr("{images} {per}", images=images(limit), per=period.per)


# --- /quota show ---------------------------------------------------------------------------


def limit_source(status: QuotaStatus, settings: GuildQuotaSettings, role_ids: Sequence[int]) -> Text:
    """Why this limit applies, in words a member understands."""
    if status.source == "blocked":
        return tr("blocked by a moderator")
    if status.source == "exempt":
        exempt = [role_id for role_id in role_ids if role_id in settings.exempt_roles]
        return tr("exempt role {role}", role=role(exempt[0])) if exempt else tr("exempt role")
    if status.source == "member":
        return tr("set for this member by a moderator")
    if status.source == "role":
        limits = [(settings.role_limits[r], r) for r in role_ids if r in settings.role_limits]
        return tr("from role {role}", role=role(max(limits)[1])) if limits else tr("from a role")
    if status.source == "guild":
        return tr("this server's default")
    return tr("the bot's default")


def headline(status: QuotaStatus) -> Text:
    if status.blocked:
        return tr("**Blocked**: a moderator has paused image generation for this member.")
    if status.remaining is None:
        return tr("**Unlimited** images.")
    return tr("**{remaining}** of {allowance} left {period}.", remaining=status.remaining,
              allowance=images(status.allowance or 0), period=this_period(status.period))


def jobs_text(jobs: Iterable[JobRecord]) -> Text:
    jobs = list(jobs)
    running = [job for job in jobs if job.state is JobState.RUNNING]
    queued = [job for job in jobs if job.state is JobState.QUEUED]
    if not jobs:
        return tr("none")
    listed = ", ".join(f"`{job.id}` ({job.request.count})" for job in jobs[:MAX_LISTED_JOBS])
    more: Text | str = tr(" and {count} more", count=len(jobs) - MAX_LISTED_JOBS) if len(jobs) > MAX_LISTED_JOBS else ""
    return tr("{running} running, {queued} queued: {listed}{more}", running=len(running), queued=len(queued),
              listed=listed, more=more)


def status_embed(
    status: QuotaStatus,
    settings: GuildQuotaSettings,
    *,
    member: discord.abc.User,
    role_ids: Sequence[int],
    jobs: Sequence[JobRecord],
    locale: str | None = None,
) -> discord.Embed:
    """The answer to `/quota show`: every number, and where it comes from, in the asker's `locale`."""
    def say(text: Text) -> str:
        return text.render(locale)

    embed = discord.Embed(
        title=say(tr("Image quota: {member}", member=member.display_name)),
        description=f"{user(member.id)} · {say(headline(status))}",
        colour=EMBED_COLOUR,
    )
    when = this_period(status.period)
    embed.add_field(name=say(tr("Used {period}", period=when)), value=say(images(status.used)))
    limit = limit_text(status.limit, status.period) if not status.blocked else tr("0 (blocked)")
    embed.add_field(name=say(tr("Limit")), value=f"{say(limit)}\n{say(limit_source(status, settings, role_ids))}")
    remaining = tr("unlimited") if status.remaining is None else images(status.remaining)
    embed.add_field(name=say(tr("Remaining")), value=say(remaining))
    if status.granted:
        embed.add_field(name=say(tr("Extra {period}", period=when)),
                        value=say(tr("+{images} granted by moderators", images=images(status.granted))))
    if status.reserved:
        embed.add_field(name=say(tr("Held by unfinished jobs")), value=say(images(status.reserved)))
    embed.add_field(name=say(tr("Resets")), value=reset_time(status.resets_at), inline=False)
    embed.add_field(name=say(tr("Jobs")), value=say(jobs_text(jobs)), inline=False)
    if status.server_cap is not None:
        spent = status.server_used + status.server_reserved
        embed.add_field(
            name=say(tr("Server this month")),
            value=say(tr("{spent} of {cap} · resets {relative} ({utc})", spent=spent, cap=images(status.server_cap),
                         relative=format_dt(status.server_resets_at, 'R'), utc=utc(status.server_resets_at))),
            inline=False,
        )
    return embed


def status_line(status: QuotaStatus) -> Text:
    """One line for a moderator's answer: the member's numbers after the change."""
    who = user(status.user_id)
    if status.blocked:
        return tr("{member} is blocked.", member=who)
    if status.remaining is None:
        return tr("{member} is unlimited ({images} used {period}).", member=who, images=images(status.used),
                  period=this_period(status.period))
    return tr("{member} has used {used} of {allowance} {period}: **{remaining}** left, resets {relative} ({utc}).",
              member=who, used=status.used, allowance=images(status.allowance or 0),
              period=this_period(status.period), remaining=status.remaining,
              relative=format_dt(status.resets_at, 'R'), utc=utc(status.resets_at))


# --- moderator actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModeratorAction:
    """What a moderator did, for their own answer and for the audit channel."""

    command: str  # e.g. "set", "server-cap"
    moderator_id: int
    summary: str  # a sentence with mentions: "Set <@1>'s limit to **50** images per day (was 25)."
    reason: str | None = None
    detail: str | None = None  # e.g. the member's numbers after the change

    def answer(self, *, audit_note: str | None = None, locale: str | None = None) -> str:
        """The moderator's private answer, in their `locale`."""
        lines: list[Text | str] = [tr("✅ {summary}", summary=self.summary)]
        if self.detail:
            lines.append(self.detail)
        if self.reason:
            lines.append(tr("Reason: {reason}", reason=self.reason))
        if audit_note:
            lines.append(audit_note)
        return join(lines, "\n").render(locale)

    def audit_embed(self, when: datetime, locale: str | None = None) -> discord.Embed:
        """The audit channel's post; it answers no one, so it speaks the server's `locale`."""
        embed = discord.Embed(title=f"/quota-admin {self.command}", description=render(self.summary, locale),
                              colour=AUDIT_COLOUR, timestamp=when)
        embed.add_field(name=tr("Moderator").render(locale), value=user(self.moderator_id))
        embed.add_field(name=tr("Reason").render(locale), value=self.reason or tr("none given").render(locale))
        if self.detail:
            embed.add_field(name=tr("Now").render(locale), value=render(self.detail, locale), inline=False)
        return embed


def was(previous: str, now: str) -> Text:
    return tr(" (was {previous})", previous=previous) if previous != now else tr(" (unchanged)")


def member_limit_set(member_id: int, limit: int | None, before: QuotaStatus, after: QuotaStatus) -> Text:
    previous = limit_text(before.limit, before.period)
    if limit is None:
        now = limit_text(after.limit, after.period)
        return tr("Removed {member}'s own limit: their roles and the server default apply again, so **{now}**{was}.",
                  member=user(member_id), now=now, was=was(previous, now))
    now = limit_text(limit, after.period)
    return tr("Set {member}'s limit to **{now}**{was}.", member=user(member_id), now=now, was=was(previous, now))


def member_reset(member_id: int, before: QuotaStatus) -> Text:
    return tr("Reset {member}'s usage for {period} ({images} forgiven; grants and running jobs are untouched).",
              member=user(member_id), period=this_period(before.period), images=images(before.used))


def member_granted(member_id: int, amount: int, after: QuotaStatus) -> Text:
    return tr("Granted {member} **{images}** extra {period}; they lapse when the quota resets {relative} ({utc}).",
              member=user(member_id), images=images(amount), period=this_period(after.period),
              relative=format_dt(after.resets_at, 'R'), utc=utc(after.resets_at))


def member_blocked(member_id: int, blocked: bool, was_blocked: bool) -> Text:
    return switched(
        blocked, was_blocked,
        on=tr("Blocked {member} from generating images on this server{already}; running jobs finish.",
              member=user(member_id), already=""),
        off=tr("Unblocked {member}{already}.", member=user(member_id), already=""),
        already_on=tr("already blocked"), already_off=tr("was not blocked"),
    )


def guild_default_set(limit: int, period: Period, before: GuildQuotaSettings) -> Text:
    previous_limit = before.default_limit if before.default_limit is not None else before.global_default_limit
    previous = limit_text(previous_limit, before.effective_period)
    now = limit_text(limit, period)
    return tr("Set this server's default to **{now}**{was}.", now=now, was=was(previous, now))


def role_limit_set(role_id: int, limit: int | None, period: Period, previous: int | None) -> Text:
    before = limit_text(previous, period) if previous is not None else tr("no limit of its own")
    if limit is None:
        return tr("Removed the limit of {role} (was {before}); its members follow other rules again.",
                  role=role(role_id), before=before)
    now = limit_text(limit, period)
    return tr("Set the limit of {role} to **{now}**{was}; members get their highest role limit.", role=role(role_id),
              now=now, was=was(before, now))


def role_exempt_set(role_id: int, exempt: bool, was_exempt: bool) -> Text:
    return switched(
        exempt, was_exempt,
        on=tr("{role} is now **exempt**: its members are unlimited (the server cap still applies){already}.",
              role=role(role_id), already=""),
        off=tr("{role} is **no longer exempt**{already}.", role=role(role_id), already=""),
        already_on=tr("already exempt"), already_off=tr("was not exempt"),
    )


def switched(now: bool, before: bool, *, on: Text, off: Text, already_on: Text, already_off: Text) -> Text:
    """The answer to turning something on or off; `{already}` notes a switch that changed nothing."""
    if now:
        return on.with_params(already=tr(" ({note})", note=already_on) if before else "")
    return off.with_params(already=tr(" ({note})", note=already_off) if not before else "")


def server_cap_set(images_cap: int | None, before: int | None, status: QuotaStatus) -> Text:
    previous = tr("no cap") if before is None else images(before)
    spent = status.server_used + status.server_reserved
    if images_cap is None:
        return tr("Removed the server's monthly cap (was {previous}); {images} made this month.", previous=previous,
                  images=images(spent))
    return tr("Set the server's monthly cap to **{cap}** (was {previous}); {spent} used this month, resets "
              "{relative} ({utc}).", cap=images(images_cap), previous=previous, spent=spent,
              relative=format_dt(status.server_resets_at, 'R'), utc=utc(status.server_resets_at))


def audit_channel_set(channel_id: int | None, before: int | None) -> Text:
    previous = channel(before) if before is not None else tr("none")
    if channel_id is None:
        return tr("Stopped posting quota changes to an audit channel (was {previous}).", previous=previous)
    return tr("Quota changes are now posted to {channel} (was {previous}).", channel=channel(channel_id),
              previous=previous)


def moderator_role_set(role_id: int | None, before: int | None) -> Text:
    previous = role(before) if before is not None else tr("none")
    if role_id is None:
        return tr("Removed the quota moderator role (was {previous}); only Manage Server members moderate now.",
                  previous=previous)
    return tr("Members with {role} may now moderate quotas, as may members with Manage Server (was {previous}).",
              role=role(role_id), previous=previous)
