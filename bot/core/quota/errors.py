"""Why a reservation was refused, with a message fit to show the member.

Each message says when things change again, as a Discord timestamp (`<t:UNIX:R>`, which
each reader's client shows in their own time zone) followed by the UTC time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.errors import UserFacingError
from bot.core.i18n import Text, tr, trn
from bot.core.quota.status import QuotaStatus


def discord_timestamp(when: datetime, style: str = "R") -> str:
    return f"<t:{int(when.timestamp())}:{style}>"


def when_text(when: datetime) -> str:
    """`<t:…:R> (2025-01-06 00:00 UTC)`."""
    return f"{discord_timestamp(when)} ({when.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


def images(count: int) -> Text:
    return trn("{count} image", "{count} images", count)


class QuotaError(UserFacingError):
    """A reservation was refused; `user_message` is safe and friendly to show the member."""

    def __init__(self, status: QuotaStatus, requested: int | None = None) -> None:
        self.status = status
        self.requested = requested
        super().__init__(self.explain(), log_message=self.log_message())

    def explain(self) -> Text:
        """The member's message, worded from the status (each refusal says it its own way)."""
        raise NotImplementedError

    def log_message(self) -> str:
        s = self.status
        return (
            f"{type(self).__name__}: guild={s.guild_id} user={s.user_id} requested={self.requested} "
            f"limit={s.limit} source={s.source} used={s.used} reserved={s.reserved} granted={s.granted} "
            f"server_cap={s.server_cap} server_used={s.server_used} server_reserved={s.server_reserved}"
        )


class QuotaExceeded(QuotaError):
    def explain(self) -> Text:
        s = self.status
        allowance = s.allowance or 0
        remaining = s.remaining or 0
        when = when_text(s.resets_at)
        held: Text | str = tr(" ({images} held by jobs still running)", images=images(s.reserved)) if s.reserved else ""
        if remaining == 0:
            return tr("You have used your {images} for {period}{held}. Your quota resets {when}.",
                      images=images(allowance), period=s.period.this, held=held, when=when)
        asked: Text | str = tr(", and this asks for {images}", images=images(self.requested)) if self.requested else ""
        return tr("You have {remaining} left of {allowance} {period}{held}{asked}. "
                  "Ask for fewer, or wait: your quota resets {when}.", remaining=images(remaining),
                  allowance=allowance, period=s.period.this, held=held, asked=asked, when=when)


class MemberBlocked(QuotaError):
    def explain(self) -> Text:
        return tr(
            "A moderator has paused image generation for you on this server. "
            "This does not reset by itself; ask a moderator if you think it is a mistake."
        )


class ServerCapReached(QuotaError):
    def __init__(self, status: QuotaStatus, resets_at: datetime, requested: int | None = None) -> None:
        self.resets_at = resets_at
        super().__init__(status, requested)

    def explain(self) -> Text:
        s = self.status
        left = s.server_remaining or 0
        if left and self.requested and self.requested > left:
            return tr("This server has {left} left for this month, and this asks for {asked}. "
                      "Ask for fewer, or wait until {when}.", left=images(left), asked=images(self.requested),
                      when=when_text(self.resets_at))
        return tr("This server has used its {cap} for this month, so image generation is paused until {when}, "
                  "or until a moderator raises the server cap.", cap=images(s.server_cap or 0),
                  when=when_text(self.resets_at))
