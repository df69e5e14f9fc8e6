"""Every catalog key the code uses: `tr`/`trn` texts in the source, and the slash commands' texts.

Source texts are found by Babel's Python extractor (literal arguments of `tr` and `trn`);
command and option descriptions and choice names are read from the cogs' command definitions
(the same English strings discord.py hands the `Translator`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.extract import extract_from_dir
from discord import app_commands
from discord.ext import commands

from bot.app import EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCE_DIRS = ("bot", "cogs")
KEYWORDS = {"tr": None, "trn": (1, 2)}


@dataclass(frozen=True)
class Key:
    msgid: str
    plural: str | None = None
    where: str = ""


def source_keys() -> Iterator[Key]:
    for directory in SOURCE_DIRS:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT / directory, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=()
        ):
            where = f"{directory}/{filename}"  # no line number: catalogs change only when texts do
            if isinstance(message, tuple):
                yield Key(message[0], message[1], where)
            else:
                yield Key(message, None, where)


def command_keys() -> Iterator[Key]:
    """Descriptions and choice names of every slash command the cogs define (names stay English)."""
    for module_name in EXTENSIONS:
        module = importlib.import_module(module_name)
        for _, cog in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cog, commands.Cog) or cog.__module__ != module_name:
                continue
            if issubclass(cog, commands.GroupCog):
                yield Key(str(cog.__cog_group_description__), where=module_name)
            for command in cog.__cog_app_commands__:
                yield from _command_texts(command, module_name)


def _command_texts(command: app_commands.Command[Any, ..., Any] | app_commands.Group, where: str) -> Iterator[Key]:
    yield Key(command.description, where=where)
    if isinstance(command, app_commands.Group):
        for child in command.commands:
            yield from _command_texts(child, where)
        return
    for parameter in command.parameters:
        yield Key(parameter.description, where=where)
        for choice in parameter.choices:
            yield Key(str(choice.name), where=where)


def catalog_keys() -> dict[str, Key]:
    """Every key by msgid (the first place it is used)."""
    keys: dict[str, Key] = {}
    for key in [*source_keys(), *command_keys()]:
        keys.setdefault(key.msgid, key)
    return keys
