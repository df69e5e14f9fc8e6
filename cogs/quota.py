"""/quota and /quota-admin: members see their image quota; moderators adjust quotas for the server.

`/quota show` is the only subcommand of `/quota`, visible to everyone. The moderator subcommands
live in a separate top-level `/quota-admin` whose `default_member_permissions` is Manage Server,
because Discord applies command permissions to a whole top-level command, never to one
subcommand. Servers may override that in Server Settings → Integrations (for example to show
`/quota-admin` to a moderator role), so each moderator subcommand still carries a check that runs
on every use: the member needs Manage Server or the server's configured moderator role
(`/quota-admin moderator-role`, itself Manage Server only). A refusal is answered privately by
the tree's error ladder and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import UserFacingError
from bot.core.i18n import tr
from bot.core.quota import GuildQuotaSettings, Period
from bot.discord_ui import quota_render as render
from bot.discord_ui.locales import member_locale, server_locale
from bot.discord_ui.replies import NO_PINGS
from bot.discord_ui.requester import member_role_ids

if TYPE_CHECKING:
    from bot.app import SeedreamBot

log = logging.getLogger(__name__)

T = TypeVar("T")
Interaction = discord.Interaction["SeedreamBot"]
Limit = app_commands.Range[int, 0, 1_000_000]
Reason = app_commands.Range[str, 1, 300]
REASON_HELP = "Why (shown in the audit channel and kept in the ledger)"


class NotModerator(UserFacingError, app_commands.CheckFailure):
    """A member without Manage Server or the moderator role ran a moderator subcommand.

    A check must raise an `AppCommandError` to reach the tree's error ladder.
    """


def _bot(interaction: discord.Interaction[Any]) -> SeedreamBot:
    return cast("SeedreamBot", interaction.client)


def _guild_id(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


async def moderator_role_of(interaction: discord.Interaction[Any]) -> int | None:
    return (await _bot(interaction).quota.guild_settings(_guild_id(interaction))).moderator_role_id


async def is_moderator(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (as Discord computed it for this interaction) or the configured moderator role."""
    if interaction.guild_id is None:
        return False
    if interaction.permissions.manage_guild:
        return True
    moderator_role = await moderator_role_of(interaction)
    return moderator_role is not None and moderator_role in member_role_ids(interaction.user)


def moderators_only() -> Callable[[T], T]:
    """A check run on every use, whatever the server's command permissions say."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        if await is_moderator(interaction):
            return True
        moderator_role = await moderator_role_of(interaction) if interaction.guild_id else None
        who = (tr("the Manage Server permission") if moderator_role is None
               else tr("the Manage Server permission or the {role} role", role=render.role(moderator_role)))
        raise NotModerator(tr("Only moderators can change quotas: this needs {who}. Nothing was changed.", who=who))

    return app_commands.check(predicate)


def manage_server_only() -> Callable[[T], T]:
    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        if interaction.guild_id is not None and interaction.permissions.manage_guild:
            return True
        raise NotModerator(tr("Only members with the Manage Server permission can choose the moderator role. "
                              "Nothing was changed."))

    return app_commands.check(predicate)


@app_commands.guild_only()
class Quota(commands.GroupCog, group_name="quota", group_description="Image quotas: see how many images you have left"):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="show")
    @app_commands.describe(user="Whose quota (moderators only; default: yours)")
    async def show(self, interaction: Interaction, user: discord.Member | None = None) -> None:
        """See your image quota: used, left, when it resets, your jobs. Moderators: anyone's."""
        member = user or interaction.user
        if member.id != interaction.user.id and not await is_moderator(interaction):
            raise UserFacingError(tr("Only moderators can see another member's quota; `/quota show` shows yours."))
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = _guild_id(interaction)
        role_ids = member_role_ids(member)
        status = await self.bot.quota.status(guild_id, member.id, role_ids)
        settings = await self.bot.quota.guild_settings(guild_id)
        jobs = await self.bot.jobs.active_for_user(member.id, guild_id)
        embed = render.status_embed(status, settings, member=member, role_ids=role_ids, jobs=jobs,
                                    locale=member_locale(interaction))
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_PINGS)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaAdmin(commands.GroupCog, group_name="quota-admin",
                 group_description="Moderators: adjust image quotas for this server"):
    def __init__(self, bot: SeedreamBot) -> None:
        self.bot = bot
        super().__init__()

    # --- a member's numbers --------------------------------------------------------------

    @app_commands.command(name="set")
    @moderators_only()
    @app_commands.describe(user="The member", limit="Images per period; leave empty to remove their own limit",
                           reason=REASON_HELP)
    async def set_limit(self, interaction: Interaction, user: discord.Member, limit: Limit | None = None,
                        reason: Reason | None = None) -> None:
        """Moderators: set a member's own image limit (overrides roles and the server default)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id, role_ids = _guild_id(interaction), member_role_ids(user)
        before = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self.bot.quota.set_member_limit(guild_id, user.id, limit, interaction.user.id, reason=reason)
        after = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self._done(interaction, render.ModeratorAction(
            "set", interaction.user.id, render.member_limit_set(user.id, limit, before, after), reason,
            render.status_line(after)))

    @app_commands.command(name="reset")
    @moderators_only()
    @app_commands.describe(user="The member", reason=REASON_HELP)
    async def reset(self, interaction: Interaction, user: discord.Member, reason: Reason | None = None) -> None:
        """Moderators: forgive a member's usage for the current period."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id, role_ids = _guild_id(interaction), member_role_ids(user)
        before = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self.bot.quota.reset_member(guild_id, user.id, interaction.user.id, reason=reason)
        after = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self._done(interaction, render.ModeratorAction(
            "reset", interaction.user.id, render.member_reset(user.id, before), reason, render.status_line(after)))

    @app_commands.command(name="grant")
    @moderators_only()
    @app_commands.describe(user="The member", amount="Extra images for the current period only", reason=REASON_HELP)
    async def grant(self, interaction: Interaction, user: discord.Member,
                    amount: app_commands.Range[int, 1, 1_000_000], reason: Reason | None = None) -> None:
        """Moderators: give a member extra images for the current period."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id, role_ids = _guild_id(interaction), member_role_ids(user)
        await self.bot.quota.grant(guild_id, user.id, amount, interaction.user.id, reason=reason)
        after = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self._done(interaction, render.ModeratorAction(
            "grant", interaction.user.id, render.member_granted(user.id, amount, after), reason,
            render.status_line(after)))

    @app_commands.command(name="block")
    @moderators_only()
    @app_commands.describe(user="The member", reason=REASON_HELP)
    async def block(self, interaction: Interaction, user: discord.Member, reason: Reason | None = None) -> None:
        """Moderators: stop a member from generating images on this server."""
        await self._set_blocked(interaction, "block", user, True, reason)

    @app_commands.command(name="unblock")
    @moderators_only()
    @app_commands.describe(user="The member", reason=REASON_HELP)
    async def unblock(self, interaction: Interaction, user: discord.Member, reason: Reason | None = None) -> None:
        """Moderators: let a blocked member generate images again."""
        await self._set_blocked(interaction, "unblock", user, False, reason)

    async def _set_blocked(self, interaction: Interaction, command: str, user: discord.Member, blocked: bool,
                           reason: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id, role_ids = _guild_id(interaction), member_role_ids(user)
        before = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self.bot.quota.set_blocked(guild_id, user.id, blocked, interaction.user.id, reason=reason)
        after = await self.bot.quota.status(guild_id, user.id, role_ids)
        await self._done(interaction, render.ModeratorAction(
            command, interaction.user.id, render.member_blocked(user.id, blocked, before.blocked), reason,
            render.status_line(after)))

    # --- server rules --------------------------------------------------------------------

    @app_commands.command(name="default")
    @moderators_only()
    @app_commands.describe(limit="Images per member per period", period="How often quotas reset (UTC); "
                           "default: keep the current one", reason=REASON_HELP)
    async def default(self, interaction: Interaction, limit: Limit,
                      period: Literal["daily", "weekly", "monthly"] | None = None,
                      reason: Reason | None = None) -> None:
        """Moderators: set the server's default limit, and optionally its period."""
        guild_id, before = await self._settings_before(interaction)
        new_period = Period(period) if period is not None else before.period
        await self.bot.quota.set_guild_default(guild_id, limit, new_period, interaction.user.id, reason=reason)
        effective = new_period or before.effective_period
        await self._done(interaction, render.ModeratorAction(
            "default", interaction.user.id, render.guild_default_set(limit, effective, before), reason))

    # Each moderator subcommand reads alike on purpose: the decorators are its public options, the
    # body acknowledges, changes one setting and reports it; what they share is in _settings_before/_done.
    @app_commands.command(name="role")
    @moderators_only()
    @app_commands.describe(role="The role", limit="Images per period for its members; leave empty to remove it",
                           reason=REASON_HELP)
    async def role_limit(self, interaction: Interaction, role: discord.Role, limit: Limit | None = None,
                         reason: Reason | None = None) -> None:
        """Moderators: set a role's limit (members get their highest role limit); empty removes it."""
        _refuse_everyone(role)
        guild_id, before = await self._settings_before(interaction)
        await self.bot.quota.set_role_limit(guild_id, role.id, limit, interaction.user.id, reason=reason)
        summary = render.role_limit_set(role.id, limit, before.effective_period, before.role_limits.get(role.id))
        await self._done(interaction, render.ModeratorAction("role", interaction.user.id, summary, reason))

    @app_commands.command(name="exempt")
    @moderators_only()
    @app_commands.describe(role="The role", exempt="True: unlimited; False: counted again; empty: toggle",
                           reason=REASON_HELP)
    async def exempt(self, interaction: Interaction, role: discord.Role, exempt: bool | None = None,
                     reason: Reason | None = None) -> None:
        """Moderators: make a role's members unlimited, or counted again (toggles by default)."""
        _refuse_everyone(role)
        guild_id, before = await self._settings_before(interaction)
        was_exempt = role.id in before.exempt_roles
        now_exempt = (not was_exempt) if exempt is None else exempt
        await self.bot.quota.set_role_exempt(guild_id, role.id, now_exempt, interaction.user.id, reason=reason)
        await self._done(interaction, render.ModeratorAction(
            "exempt", interaction.user.id, render.role_exempt_set(role.id, now_exempt, was_exempt), reason))

    @app_commands.command(name="server-cap")
    @moderators_only()
    @app_commands.describe(images="Images the whole server may make per calendar month (UTC); empty: no cap",
                           reason=REASON_HELP)
    async def server_cap(self, interaction: Interaction, images: Limit | None = None,
                         reason: Reason | None = None) -> None:
        """Moderators: cap the images the whole server may make each month; empty removes the cap."""
        guild_id, settings = await self._settings_before(interaction)
        before = settings.server_cap
        await self.bot.quota.set_server_cap(guild_id, images, interaction.user.id, reason=reason)
        status = await self.bot.quota.status(guild_id, interaction.user.id, ())
        await self._done(interaction, render.ModeratorAction(
            "server-cap", interaction.user.id, render.server_cap_set(images, before, status), reason))

    @app_commands.command(name="audit-channel")
    @moderators_only()
    @app_commands.describe(channel="Where moderator actions are posted; empty: stop posting", reason=REASON_HELP)
    async def audit_channel(self, interaction: Interaction, channel: discord.TextChannel | None = None,
                            reason: Reason | None = None) -> None:
        """Moderators: choose the channel that receives every quota change."""
        guild_id, settings = await self._settings_before(interaction)
        before = settings.audit_channel_id
        channel_id = channel.id if channel is not None else None
        await self.bot.quota.set_audit_channel(guild_id, channel_id, interaction.user.id, reason=reason)
        # Both the old and the new channel hear of the move, so the log cannot be redirected quietly.
        notify = list(dict.fromkeys(c for c in (before, channel_id) if c is not None))
        await self._done(interaction, render.ModeratorAction(
            "audit-channel", interaction.user.id, render.audit_channel_set(channel_id, before), reason),
            audit_channels=notify)

    @app_commands.command(name="moderator-role")
    @manage_server_only()
    @app_commands.describe(role="Members with this role may moderate quotas; empty: none", reason=REASON_HELP)
    async def moderator_role(self, interaction: Interaction, role: discord.Role | None = None,
                             reason: Reason | None = None) -> None:
        """Manage Server: choose a role whose members may moderate quotas too."""
        if role is not None:
            _refuse_everyone(role)
        guild_id, settings = await self._settings_before(interaction)
        before = settings.moderator_role_id
        role_id = role.id if role is not None else None
        await self.bot.quota.set_moderator_role(guild_id, role_id, interaction.user.id, reason=reason)
        await self._done(interaction, render.ModeratorAction(
            "moderator-role", interaction.user.id, render.moderator_role_set(role_id, before), reason))

    # --- answering -----------------------------------------------------------------------

    async def _settings_before(self, interaction: Interaction) -> tuple[int, GuildQuotaSettings]:
        """Acknowledge a server-wide change privately, and read the settings it changes."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = _guild_id(interaction)
        return guild_id, await self.bot.quota.guild_settings(guild_id)

    async def _done(self, interaction: Interaction, action: render.ModeratorAction, *,
                    audit_channels: Iterable[int] | None = None) -> None:
        """Post the action to the audit channel (when there is one), then answer the moderator privately."""
        guild_id = _guild_id(interaction)
        if audit_channels is None:
            configured = (await self.bot.quota.guild_settings(guild_id)).audit_channel_id
            audit_channels = [configured] if configured is not None else []
        missed = [c for c in audit_channels if not await self._post_audit(guild_id, c, action)]
        note = None
        if missed:
            where = ", ".join(render.channel(c) for c in missed)
            note = tr("⚠️ I could not post this to the audit channel {where}: check that I can view it, "
                      "send messages and embed links there.", where=where)
        await interaction.followup.send(action.answer(audit_note=note, locale=member_locale(interaction)),
                                        ephemeral=True, allowed_mentions=NO_PINGS)

    async def _post_audit(self, guild_id: int, channel_id: int, action: render.ModeratorAction) -> bool:
        target = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            locale = server_locale(self.bot.get_guild(guild_id))
            await target.send(embed=action.audit_embed(discord.utils.utcnow(), locale), allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            log.warning("could not post a quota action to audit channel %s in guild %s", channel_id, guild_id,
                        exc_info=True)
            return False
        return True


def _refuse_everyone(role: discord.Role) -> None:
    if role.is_default():
        raise UserFacingError(tr("@everyone is not a quota role: use `/quota-admin default` to set everyone's limit. "
                                 "Nothing was changed."))


async def setup(bot: SeedreamBot) -> None:
    await bot.add_cog(Quota(bot))
    await bot.add_cog(QuotaAdmin(bot))
