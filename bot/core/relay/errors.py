"""Typed relay errors; each carries a message that is safe to show a Discord member."""

from __future__ import annotations

from typing import Literal

from bot.core.errors import UserFacingError
from bot.core.i18n import Text, tr


class SeedreamError(UserFacingError):
    """Base class. `user_message` is friendly and never contains secrets.

    `retry_after` is the relay's own hint (its `Retry-After`), which any error may carry.
    """

    user_message = tr("The image service failed. Please try again later.")
    retryable = False

    def __init__(
        self, user_message: Text | str | None = None, *, code: str | None = None, status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.retry_after = retry_after
        shown = user_message or type(self).user_message
        super().__init__(shown, log_message=shown if code is None else f"{code}: {shown}")


class InvalidRequest(SeedreamError):
    user_message = tr("The image service rejected the request as invalid.")


class ContentBlocked(SeedreamError):
    """Moderation refused the prompt, a reference image or a generated image."""

    user_message = tr("The image service's safety filter blocked this request.")

    def __init__(
        self,
        user_message: Text | str | None = None,
        *,
        kind: Literal["input_text", "input_image", "output_image"] = "input_text",
        code: str | None = None,
        status: int | None = None,
    ):
        self.kind = kind
        super().__init__(user_message, code=code, status=status)


class AuthenticationFailed(SeedreamError):
    user_message = tr("The bot's image-service key was rejected. Please tell the bot's owner.")


class RateLimited(SeedreamError):
    user_message = tr("The image service is busy right now. Please try again in a moment.")
    retryable = True


class QuotaExhausted(SeedreamError):
    """The relay account is out of credit or hit a spend cap: not transient."""

    user_message = tr("The bot's image-service account is out of credit. Please tell the bot's owner.")


class ServerError(SeedreamError):
    user_message = tr("The image service had an internal error. Please try again later.")
    retryable = True


class RelayTimeout(SeedreamError):
    user_message = tr("The image service took too long to answer. Please try again later.")
    retryable = True


class MalformedResponse(SeedreamError):
    user_message = tr("The image service sent a response the bot could not read.")
