"""The one base for every failure a member must hear about.

The command tree's error ladder (bot/discord_ui/tree.py) shows `user_message` privately, in the
member's language (`localized`); any other exception is logged with a reference and the member
gets a generic apology.
"""

from __future__ import annotations

from bot.core.i18n import render, tr


class UserFacingError(Exception):
    """A failure whose `user_message` is friendly, safe to show in Discord and free of secrets.

    Subclasses may set `user_message` as a class attribute (their default text) or a property.
    It is a `Text` (translated when shown) or, for words that are not ours, a plain string.
    `log_message` is the exception's own text for logs; it defaults to the English `user_message`.
    """

    user_message: str = tr("Something went wrong. Please try again.")

    def __init__(self, user_message: str | None = None, *, log_message: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        super().__init__(log_message if log_message is not None else str(self.user_message))

    def localized(self, locale: str | None) -> str:
        """`user_message` in a Discord locale (English where it has no translation)."""
        return str(render(self.user_message, locale))
