"""Moderator changes to quotas: each one a transaction that writes a ledger row naming the moderator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.quota.base import QuotaBase
from bot.core.quota.limits import check_limit
from bot.core.quota.periods import Period
from bot.core.quota.status import GuildQuotaSettings
from bot.storage import quota_ledger as ledger
from bot.storage import quota_settings as settings
from bot.storage.quota_ledger import LedgerEntry, LedgerKind
from bot.storage.quota_settings import lock_member, lock_role, read_guild, read_roles


@dataclass(frozen=True)
class _Change:
    """One moderator change in progress: its transaction, who makes it, why, and when."""

    conn: AsyncConnection
    guild_id: int
    moderator_id: int
    reason: str | None
    now: datetime

    async def record(
        self, kind: LedgerKind, *, user_id: int | None = None, amount: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """The change's ledger row."""
        await ledger.record(
            self.conn, guild_id=self.guild_id, user_id=user_id, kind=kind, amount=amount,
            moderator_id=self.moderator_id, reason=self.reason, detail=detail, now=self.now,
        )


class QuotaModeration(QuotaBase):
    """Moderators' settings and adjustments, and reading them back."""

    async def guild_settings(self, guild_id: int) -> GuildQuotaSettings:
        async with self._db.engine.connect() as conn:
            guild = await read_guild(conn, guild_id)
            roles = await read_roles(conn, guild_id)
        return GuildQuotaSettings(
            guild_id=guild_id,
            default_limit=guild.default_limit,
            period=Period(guild.period) if guild.period else None,
            effective_period=self._period(guild),
            global_default_limit=self._global_default,
            server_cap=guild.server_cap,
            audit_channel_id=guild.audit_channel_id,
            moderator_role_id=guild.moderator_role_id,
            role_limits={role.role_id: role.limit for role in roles if role.limit is not None},
            exempt_roles=frozenset(role.role_id for role in roles if role.exempt),
        )

    async def audit_log(self, guild_id: int, limit: int = 50) -> list[LedgerEntry]:
        """Every ledger row of the guild, newest first (settings changes included)."""
        async with self._db.engine.connect() as conn:
            return await ledger.entries(conn, guild_id, None, limit)

    # --- a member ---------------------------------------------------------------------------
    # The public methods below share one signature shape (ids, the new value, the moderator,
    # a reason) on purpose: each is one command of cogs/quota.py, and the work they share is in
    # `_change` and the `_change_*` helpers, so each body is one line of intent.

    async def set_member_limit(
        self, guild_id: int, user_id: int, limit: int | None, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Override the member's limit; `None` removes the override."""
        check_limit(limit, "limit")
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_member(change, user_id, LedgerKind.MEMBER_LIMIT, "limit", amount=limit, image_limit=limit)

    async def set_blocked(
        self, guild_id: int, user_id: int, blocked: bool, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """A blocked member gets nothing; their running jobs keep their reservations."""
        kind = LedgerKind.BLOCK if blocked else LedgerKind.UNBLOCK
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_member(change, user_id, kind, "blocked", blocked=blocked)

    async def reset_member(
        self, guild_id: int, user_id: int, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Zero the member's usage in the current window with a negative adjustment.

        Grants stay, and live reservations still count (and are charged if they deliver).
        """
        async with self._change(guild_id, moderator_id, reason) as change:
            await lock_member(change.conn, guild_id, user_id)
            start, end = self._period(await read_guild(change.conn, guild_id)).window(change.now)
            usage = await ledger.member_usage(change.conn, guild_id, user_id, start, end)
            await change.record(LedgerKind.RESET, user_id=user_id, amount=-usage,
                                detail={"window_start": start.isoformat()})

    async def grant(
        self, guild_id: int, user_id: int, amount: int, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Give the member `amount` extra images for the current window only."""
        if amount < 1:
            raise ValueError(f"a grant is at least one image, not {amount}")
        async with self._change(guild_id, moderator_id, reason) as change:
            await lock_member(change.conn, guild_id, user_id)
            await change.record(LedgerKind.GRANT, user_id=user_id, amount=amount)

    # --- the guild --------------------------------------------------------------------------

    async def set_guild_default(
        self,
        guild_id: int,
        limit: int | None,
        period: Period | None,
        moderator_id: int,
        *,
        reason: str | None = None,
    ) -> None:
        """Set the guild's default limit and period; `None` for either falls back to the bot's."""
        check_limit(limit, "limit")
        period_value = Period(period).value if period is not None else None
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_guild(change, LedgerKind.GUILD_DEFAULT, limit, default_limit=limit, period=period_value)

    async def set_server_cap(
        self, guild_id: int, images: int | None, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Cap the images the whole guild may generate per calendar month (UTC); `None`: no cap."""
        check_limit(images, "server cap")
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_guild(change, LedgerKind.SERVER_CAP, images, server_cap=images)

    async def set_audit_channel(
        self, guild_id: int, channel_id: int | None, moderator_id: int, *, reason: str | None = None
    ) -> None:
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_guild(change, LedgerKind.AUDIT_CHANNEL, None, audit_channel_id=channel_id)

    async def set_moderator_role(
        self, guild_id: int, role_id: int | None, moderator_id: int, *, reason: str | None = None
    ) -> None:
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_guild(change, LedgerKind.MODERATOR_ROLE, None, moderator_role_id=role_id)

    # --- a role -----------------------------------------------------------------------------

    async def set_role_limit(
        self, guild_id: int, role_id: int, limit: int | None, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Members take the highest limit among their roles; `None` removes this role's limit."""
        check_limit(limit, "limit")
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_role(change, role_id, LedgerKind.ROLE_LIMIT, "limit", amount=limit, image_limit=limit)

    async def set_role_exempt(
        self, guild_id: int, role_id: int, exempt: bool, moderator_id: int, *, reason: str | None = None
    ) -> None:
        """Members with an exempt role are unlimited (the server cap still applies)."""
        async with self._change(guild_id, moderator_id, reason) as change:
            await _change_role(change, role_id, LedgerKind.ROLE_EXEMPT, "exempt", detail={"exempt": exempt},
                               exempt=exempt)

    @asynccontextmanager
    async def _change(self, guild_id: int, moderator_id: int, reason: str | None) -> AsyncIterator[_Change]:
        async with self._db.transaction() as conn:
            yield _Change(conn, guild_id, moderator_id, reason, self._clock())


async def _change_member(
    change: _Change, user_id: int, kind: LedgerKind, field: str, *, amount: int | None = None, **values: Any
) -> None:
    """Update the member's row and record it, with the previous value of `field`."""
    member = await lock_member(change.conn, change.guild_id, user_id)
    await settings.update_member(change.conn, change.guild_id, user_id, change.now, **values)
    await change.record(kind, user_id=user_id, amount=amount, detail={"previous": getattr(member, field)})


async def _change_role(
    change: _Change,
    role_id: int,
    kind: LedgerKind,
    field: str,
    *,
    amount: int | None = None,
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """Update one role rule and record it, with the previous value of `field`."""
    role = await lock_role(change.conn, change.guild_id, role_id)
    await settings.update_role(change.conn, change.guild_id, role_id, change.now, **values)
    previous = getattr(role, field)
    await change.record(kind, amount=amount, detail={"role_id": role_id, **(detail or {}), "previous": previous})


async def _change_guild(change: _Change, kind: LedgerKind, amount: int | None, **values: Any) -> None:
    """Update the guild's settings row and record the new values beside the previous ones."""
    guild = await read_guild(change.conn, change.guild_id, lock=True)
    previous = {name: getattr(guild, name) for name in values}
    await settings.update_guild(change.conn, change.guild_id, change.now, **values)
    await change.record(kind, amount=amount, detail={**values, "previous": previous})
