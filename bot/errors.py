"""Errors whose message is meant for the member who caused them."""

from __future__ import annotations

from discord import app_commands


class UserFacingError(app_commands.AppCommandError):
    """Raised from a command to tell the member, privately, what to change."""

    def __init__(self, user_message: str) -> None:
        self.user_message = user_message
        super().__init__(user_message)
