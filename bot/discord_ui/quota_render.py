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

from bot.core.format import plural
from bot.core.quota import GuildQuotaSettings, Period, QuotaStatus
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


def this_period(period: Period) -> str:
    """`today`, `this week` or `this month`."""
    return "today" if period is Period.DAILY else f"this {period.noun}"


def limit_text(limit: int | None, period: Period) -> str:
    """`25 images per day`, or `unlimited`."""
    return "unlimited" if limit is None else f"{plural(limit, 'image')} per {period.noun}"


# --- /quota show ---------------------------------------------------------------------------


def limit_source(status: QuotaStatus, settings: GuildQuotaSettings, role_ids: Sequence[int]) -> str:
    """Why this limit applies, in words a member understands."""
    if status.source == "blocked":
        return "blocked by a moderator"
    if status.source == "exempt":
        exempt = [role_id for role_id in role_ids if role_id in settings.exempt_roles]
        return f"exempt role {role(exempt[0])}" if exempt else "exempt role"
    if status.source == "member":
        return "set for this member by a moderator"
    if status.source == "role":
        limits = [(settings.role_limits[r], r) for r in role_ids if r in settings.role_limits]
        return f"from role {role(max(limits)[1])}" if limits else "from a role"
    if status.source == "guild":
        return "this server's default"
    return "the bot's default"


def headline(status: QuotaStatus) -> str:
    if status.blocked:
        return "**Blocked**: a moderator has paused image generation for this member."
    if status.remaining is None:
        return "**Unlimited** images."
    return f"**{status.remaining}** of {plural(status.allowance or 0, 'image')} left {this_period(status.period)}."


def jobs_text(jobs: Iterable[JobRecord]) -> str:
    jobs = list(jobs)
    running = [job for job in jobs if job.state is JobState.RUNNING]
    queued = [job for job in jobs if job.state is JobState.QUEUED]
    if not jobs:
        return "none"
    counts = f"{len(running)} running, {len(queued)} queued"
    listed = ", ".join(f"`{job.id}` ({job.request.count})" for job in jobs[:MAX_LISTED_JOBS])
    more = f" and {len(jobs) - MAX_LISTED_JOBS} more" if len(jobs) > MAX_LISTED_JOBS else ""
    return f"{counts}: {listed}{more}"


def status_embed(
    status: QuotaStatus,
    settings: GuildQuotaSettings,
    *,
    member: discord.abc.User,
    role_ids: Sequence[int],
    jobs: Sequence[JobRecord],
) -> discord.Embed:
    """The answer to `/quota show`: every number, and where it comes from."""
    embed = discord.Embed(
        title=f"Image quota: {member.display_name}",
        description=f"{user(member.id)} · {headline(status)}",
        colour=EMBED_COLOUR,
    )
    when = this_period(status.period)
    embed.add_field(name=f"Used {when}", value=plural(status.used, 'image'))
    limit = limit_text(status.limit, status.period) if not status.blocked else "0 (blocked)"
    embed.add_field(name="Limit", value=f"{limit}\n{limit_source(status, settings, role_ids)}")
    remaining = "unlimited" if status.remaining is None else plural(status.remaining, 'image')
    embed.add_field(name="Remaining", value=remaining)
    if status.granted:
        embed.add_field(name=f"Extra {when}", value=f"+{plural(status.granted, 'image')} granted by moderators")
    if status.reserved:
        embed.add_field(name="Held by unfinished jobs", value=plural(status.reserved, 'image'))
    embed.add_field(name="Resets", value=reset_time(status.resets_at), inline=False)
    embed.add_field(name="Jobs", value=jobs_text(jobs), inline=False)
    if status.server_cap is not None:
        spent = status.server_used + status.server_reserved
        embed.add_field(
            name="Server this month",
            value=f"{spent} of {plural(status.server_cap, 'image')} · resets {format_dt(status.server_resets_at, 'R')} "
            f"({utc(status.server_resets_at)})",
            inline=False,
        )
    return embed


def status_line(status: QuotaStatus) -> str:
    """One line for a moderator's answer: the member's numbers after the change."""
    who = user(status.user_id)
    if status.blocked:
        return f"{who} is blocked."
    if status.remaining is None:
        return f"{who} is unlimited ({plural(status.used, 'image')} used {this_period(status.period)})."
    return (
        f"{who} has used {status.used} of {plural(status.allowance or 0, 'image')} {this_period(status.period)}: "
        f"**{status.remaining}** left, resets {format_dt(status.resets_at, 'R')} ({utc(status.resets_at)})."
    )


# --- moderator actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModeratorAction:
    """What a moderator did, for their own answer and for the audit channel."""

    command: str  # e.g. "set", "server-cap"
    moderator_id: int
    summary: str  # a sentence with mentions: "Set <@1>'s limit to **50** images per day (was 25)."
    reason: str | None = None
    detail: str | None = None  # e.g. the member's numbers after the change

    def answer(self, *, audit_note: str | None = None) -> str:
        lines = [f"✅ {self.summary}"]
        if self.detail:
            lines.append(self.detail)
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        if audit_note:
            lines.append(audit_note)
        return "\n".join(lines)

    def audit_embed(self, when: datetime) -> discord.Embed:
        embed = discord.Embed(title=f"/quota-admin {self.command}", description=self.summary, colour=AUDIT_COLOUR,
                              timestamp=when)
        embed.add_field(name="Moderator", value=user(self.moderator_id))
        embed.add_field(name="Reason", value=self.reason or "none given")
        if self.detail:
            embed.add_field(name="Now", value=self.detail, inline=False)
        return embed


def was(previous: str, now: str) -> str:
    return f" (was {previous})" if previous != now else " (unchanged)"


def member_limit_set(member_id: int, limit: int | None, before: QuotaStatus, after: QuotaStatus) -> str:
    previous = limit_text(before.limit, before.period)
    if limit is None:
        now = limit_text(after.limit, after.period)
        return (f"Removed {user(member_id)}'s own limit: their roles and the server default apply again, "
                f"so **{now}**{was(previous, now)}.")
    now = limit_text(limit, after.period)
    return f"Set {user(member_id)}'s limit to **{now}**{was(previous, now)}."


def member_reset(member_id: int, before: QuotaStatus) -> str:
    return (f"Reset {user(member_id)}'s usage for {this_period(before.period)} "
            f"({plural(before.used, 'image')} forgiven; grants and running jobs are untouched).")


def member_granted(member_id: int, amount: int, after: QuotaStatus) -> str:
    return (f"Granted {user(member_id)} **{plural(amount, 'image')}** extra {this_period(after.period)}; "
            f"they lapse when the quota resets {format_dt(after.resets_at, 'R')} ({utc(after.resets_at)}).")


def member_blocked(member_id: int, blocked: bool, was_blocked: bool) -> str:
    return switched(
        blocked, was_blocked,
        on=f"Blocked {user(member_id)} from generating images on this server{{already}}; running jobs finish.",
        off=f"Unblocked {user(member_id)}{{already}}.", already_on="already blocked", already_off="was not blocked",
    )


def guild_default_set(limit: int, period: Period, before: GuildQuotaSettings) -> str:
    previous_limit = before.default_limit if before.default_limit is not None else before.global_default_limit
    previous = limit_text(previous_limit, before.effective_period)
    now = limit_text(limit, period)
    return f"Set this server's default to **{now}**{was(previous, now)}."


def role_limit_set(role_id: int, limit: int | None, period: Period, previous: int | None) -> str:
    before = limit_text(previous, period) if previous is not None else "no limit of its own"
    if limit is None:
        return f"Removed the limit of {role(role_id)} (was {before}); its members follow other rules again."
    now = limit_text(limit, period)
    return f"Set the limit of {role(role_id)} to **{now}**{was(before, now)}; members get their highest role limit."


def role_exempt_set(role_id: int, exempt: bool, was_exempt: bool) -> str:
    return switched(
        exempt, was_exempt,
        on=f"{role(role_id)} is now **exempt**: its members are unlimited (the server cap still applies){{already}}.",
        off=f"{role(role_id)} is **no longer exempt**{{already}}.", already_on="already exempt",
        already_off="was not exempt",
    )


def switched(now: bool, before: bool, *, on: str, off: str, already_on: str, already_off: str) -> str:
    """The answer to turning something on or off; `{already}` notes a switch that changed nothing."""
    if now:
        return on.format(already=f" ({already_on})" if before else "")
    return off.format(already=f" ({already_off})" if not before else "")


def server_cap_set(images_cap: int | None, before: int | None, status: QuotaStatus) -> str:
    previous = "no cap" if before is None else plural(before, 'image')
    spent = status.server_used + status.server_reserved
    if images_cap is None:
        return f"Removed the server's monthly cap (was {previous}); {plural(spent, 'image')} made this month."
    return (f"Set the server's monthly cap to **{plural(images_cap, 'image')}** (was {previous}); "
            f"{spent} used this month, resets {format_dt(status.server_resets_at, 'R')} "
            f"({utc(status.server_resets_at)}).")


def audit_channel_set(channel_id: int | None, before: int | None) -> str:
    previous = channel(before) if before is not None else "none"
    if channel_id is None:
        return f"Stopped posting quota changes to an audit channel (was {previous})."
    return f"Quota changes are now posted to {channel(channel_id)} (was {previous})."


def moderator_role_set(role_id: int | None, before: int | None) -> str:
    previous = role(before) if before is not None else "none"
    if role_id is None:
        return f"Removed the quota moderator role (was {previous}); only Manage Server members moderate now."
    return (f"Members with {role(role_id)} may now moderate quotas, as may members with Manage Server "
            f"(was {previous}).")
