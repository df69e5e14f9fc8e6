"""The one modal that asks for an edit prompt and, optionally, a size."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.core.i18n import render, tr
from bot.discord_ui.replies import explain, reply_privately

MODAL_TIMEOUT = 30 * 60.0  # an abandoned modal (and what it holds) is forgotten after this

SubmitEdit = Callable[[discord.Interaction[Any], str, str | None], Awaitable[None]]


class EditPromptModal(discord.ui.Modal):
    """Calls `submit(interaction, prompt, size or None)`; failures are answered privately."""

    def __init__(self, *, title: str, submit: SubmitEdit, max_prompt_length: int, size_hint: str,
                 placeholder: str = tr("e.g. make it a snowy night, keep everything else"),
                 locale: str | None = None) -> None:
        super().__init__(title=title, timeout=MODAL_TIMEOUT)
        self._submit = submit
        self.prompt: discord.ui.TextInput[EditPromptModal] = discord.ui.TextInput(
            label=tr("What should change?").render(locale),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            placeholder=render(placeholder, locale),
            max_length=min(4000, max_prompt_length),
        )
        self.size: discord.ui.TextInput[EditPromptModal] = discord.ui.TextInput(
            label=tr("Size (optional)").render(locale),
            custom_id="size",
            required=False,
            placeholder=tr("1K, 2K, 4K or WIDTHxHEIGHT (default {size})", size=size_hint).render(locale),
            max_length=16,
        )
        self.add_item(self.prompt)
        self.add_item(self.size)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._submit(interaction, self.prompt.value, self.size.value.strip() or None)

    async def on_error(  # type: ignore[override]  # Modal.on_error has no item, unlike View
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await reply_privately(interaction, explain(error, f"the modal {self.title!r}"))
