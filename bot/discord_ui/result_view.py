"""The controls under every result message: Reroll, Edit, Upscale, Delete, and an image picker.

Each control is a discord.py `DynamicItem`: its custom_id carries the job id (and, where it
matters, the image's index and the message holding it), so a click is matched by pattern and
answered from the database even after a restart; no view is kept in memory. This module only
draws and parses the controls; what a click does is `ResultActions`, which the Results cog
(cogs/results.py) implements.

Custom ids (image indices are 0-based; the member sees them 1-based):

    sd:reroll:<job>                     same request again
    sd:edit:<job>:<index>[:<message>]   modal for a new prompt, this image as the reference
    sd:upscale:<job>:<index>[:<message>] this image as the reference, at 4K
    sd:delete:<job>                     delete the message the button is on
    sd:pick:<job>                       select menu: which image of a set Edit/Upscale act on

`<message>` is given when the button is not on the message holding the image (the picker's
private answer); otherwise the image is on the clicked message itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, Self, runtime_checkable

import discord
from discord.ext import commands

from bot.core.i18n import render, tr
from bot.discord_ui.locales import member_locale

RESULTS_COG = "Results"
JOB = r"(?P<job>[a-z0-9]{1,16})"
IMAGE = r"(?P<index>\d{1,2})(?::(?P<message>\d{1,20}))?"
MAX_CUSTOM_ID = 100


@runtime_checkable
class ResultActions(Protocol):
    """What the result controls do (implemented by cogs/results.py)."""

    async def reroll(self, interaction: discord.Interaction[Any], job_id: str) -> None: ...

    async def edit(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                   message_id: int | None) -> None: ...

    async def upscale(self, interaction: discord.Interaction[Any], job_id: str, index: int,
                      message_id: int | None) -> None: ...

    async def delete(self, interaction: discord.Interaction[Any], job_id: str) -> None: ...

    async def pick(self, interaction: discord.Interaction[Any], job_id: str, index: int) -> None: ...


UNAVAILABLE = tr("Result buttons are not available right now. Please try again in a moment.")


async def _actions(interaction: discord.Interaction[Any]) -> ResultActions | None:
    """The Results cog, or None (after answering the member) when it is not loaded."""
    client = interaction.client
    # AutoShardedBot is no commands.Bot subclass: both share BotBase, which owns the cogs.
    cog = client.get_cog(RESULTS_COG) if isinstance(client, commands.bot.BotBase) else None
    if isinstance(cog, ResultActions):
        return cog
    await interaction.response.send_message(UNAVAILABLE.render(member_locale(interaction)), ephemeral=True)
    return None


def _custom_id(*parts: object) -> str:
    custom_id = ":".join(["sd", *(str(part) for part in parts)])
    if len(custom_id) > MAX_CUSTOM_ID:
        raise ValueError(f"custom_id longer than {MAX_CUSTOM_ID} characters: {custom_id!r}")
    return custom_id


def _message_id(match: re.Match[str]) -> int | None:
    return int(match["message"]) if match["message"] else None


class _JobItem:
    """A control whose custom_id carries only its job's id (Reroll, Delete, the image picker)."""

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> Self:
        return cls(match["job"])  # type: ignore[call-arg]  # the subclass's __init__ takes the id


class _JobButton(_JobItem):
    """What Reroll and Delete share: a button that carries only its job's id.

    Mixed into a `DynamicItem` subclass that sets `action`, `label`, `emoji` and `style`; a click
    calls the `ResultActions` method named by `action`.
    """

    action: str
    label: str
    emoji: str
    style: discord.ButtonStyle

    def __init__(self, job_id: str, *, row: int | None = None, locale: str | None = None) -> None:
        super().__init__(discord.ui.Button(  # type: ignore[call-arg]  # DynamicItem.__init__
            label=render(self.label, locale), emoji=self.emoji, style=self.style,
            custom_id=_custom_id(self.action, job_id), row=row,
        ))
        self.job_id = job_id

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if actions := await _actions(interaction):
            await getattr(actions, self.action)(interaction, self.job_id)


class RerollButton(_JobButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sd:reroll:{JOB}"):
    action, label, style = "reroll", tr("Reroll"), discord.ButtonStyle.secondary
    emoji = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"


class DeleteButton(_JobButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sd:delete:{JOB}"):
    action, label, style = "delete", tr("Delete"), discord.ButtonStyle.danger
    emoji = "\N{WASTEBASKET}\N{VARIATION SELECTOR-16}"


class _ImageButton:
    """What Edit and Upscale share: a job, an image index and, maybe, the message holding it.

    Mixed into a `DynamicItem` subclass that sets `action`, `default_label` and `emoji`; a click
    calls the `ResultActions` method named by `action`.
    """

    action: str
    default_label: str
    emoji: str

    def __init__(self, job_id: str, index: int, message_id: int | None = None, *, label: str | None = None,
                 row: int | None = None, locale: str | None = None) -> None:
        parts: list[object] = [self.action, job_id, index] + ([message_id] if message_id else [])
        super().__init__(discord.ui.Button(  # type: ignore[call-arg]  # DynamicItem.__init__
            label=render(label or self.default_label, locale), emoji=self.emoji, style=discord.ButtonStyle.primary,
            custom_id=_custom_id(*parts), row=row,
        ))
        self.job_id, self.index, self.message_id = job_id, index, message_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> Self:
        return cls(match["job"], int(match["index"]), _message_id(match))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if actions := await _actions(interaction):
            act = getattr(actions, self.action)
            await act(interaction, self.job_id, self.index, self.message_id)


class EditButton(_ImageButton, discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sd:edit:{JOB}:{IMAGE}"):
    action, default_label, emoji = "edit", tr("Edit"), "\N{PENCIL}\N{VARIATION SELECTOR-16}"


class UpscaleButton(_ImageButton, discord.ui.DynamicItem[discord.ui.Button[Any]],
                    template=rf"sd:upscale:{JOB}:{IMAGE}"):
    action, default_label, emoji = "upscale", tr("Upscale 4K"), "\N{LEFT-POINTING MAGNIFYING GLASS}"


class ImagePicker(_JobItem, discord.ui.DynamicItem[discord.ui.Select[Any]], template=rf"sd:pick:{JOB}"):
    """A select listing the images of one message of a set; choosing one offers Edit and Upscale for it."""

    def __init__(self, job_id: str, indices: Sequence[int] = (), *, row: int | None = None,
                 locale: str | None = None) -> None:
        options = [discord.SelectOption(label=tr("Image {number}", number=index + 1).render(locale), value=str(index))
                   for index in indices]
        super().__init__(discord.ui.Select(
            placeholder=tr("Edit or upscale one of these images…").render(locale),
            custom_id=_custom_id("pick", job_id),
            options=options or [discord.SelectOption(label="Image", value="0")], row=row,
        ))
        self.job_id = job_id

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        values = data.get("values") or []
        chosen = str(values[0]) if values else ""
        if not chosen.isdigit():
            await interaction.response.send_message(
                tr("Please choose an image from the list.").render(member_locale(interaction)), ephemeral=True)
            return
        if actions := await _actions(interaction):
            await actions.pick(interaction, self.job_id, int(chosen))


CONTROLS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    RerollButton, EditButton, UpscaleButton, DeleteButton, ImagePicker,
)


def result_view(job_id: str, indices: Sequence[int], locale: str | None) -> discord.ui.View:
    """The controls for one result message holding the images `indices` (0-based) of job `job_id`.

    One image: Reroll, Edit, Upscale, Delete. Several: a picker for Edit/Upscale above Reroll, Delete.
    Labels speak `locale` (the requester's); the custom ids, which a click is matched by, do not change.
    """
    view = discord.ui.View(timeout=None)
    if len(indices) == 1:
        view.add_item(RerollButton(job_id, row=0, locale=locale))
        view.add_item(EditButton(job_id, indices[0], row=0, locale=locale))
        view.add_item(UpscaleButton(job_id, indices[0], row=0, locale=locale))
        view.add_item(DeleteButton(job_id, row=0, locale=locale))
    else:
        view.add_item(ImagePicker(job_id, indices, row=0, locale=locale))
        view.add_item(RerollButton(job_id, row=1, locale=locale))
        view.add_item(DeleteButton(job_id, row=1, locale=locale))
    return view


def picked_image_view(job_id: str, index: int, message_id: int, locale: str | None = None) -> discord.ui.View:
    """Edit and Upscale for one image of a set (sent privately after the picker)."""
    number = index + 1
    view = discord.ui.View(timeout=None)
    view.add_item(EditButton(job_id, index, message_id, label=tr("Edit image {number}", number=number),
                             locale=locale))
    view.add_item(UpscaleButton(job_id, index, message_id, label=tr("Upscale image {number} to 4K", number=number),
                                locale=locale))
    return view
