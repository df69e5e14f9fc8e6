"""Midjourney-style options typed into a prompt (`--ar 16:9 --n 4 --4k`), read and taken out.

Members used to Midjourney type their options into the prompt. `parse_flags` finds them (any
whitespace-separated token `--name`, `--name value` or `--name=value`; phones that turn `--` into
an em dash are understood too), removes them from the text sent to the model and returns what
they set. An unknown flag or a bad value raises `InvalidFlag`, whose message lists what is allowed.
Pure: no I/O, no settings; `requests.build_request` decides what wins over what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.i18n import Text, tr
from bot.core.images.sizes import InvalidSize, parse_size
from bot.core.limits import MAX_ASPECT_RATIO, MAX_IMAGES
from bot.core.relay.errors import InvalidRequest

ALLOWED_FLAGS = tr(
    "`--ar W:H` (aspect ratio, e.g. `--ar 16:9`), `--n N` or `--count N` (1–{max} images), "
    "`--1k`, `--2k` or `--4k`, `--size WxH` (e.g. `--size 2848x1600`), `--watermark` or `--no-watermark`",
    max=MAX_IMAGES,
)

# A token that starts a flag: two hyphens (or an em/en dash) and a letter or digit.
_FLAG = re.compile(r"^(?:--|\u2014|\u2013)(?P<name>[A-Za-z0-9][A-Za-z0-9-]*)(?:=(?P<value>.*))?$")
_RATIO = re.compile(r"^(\d{1,5})\s*:\s*(\d{1,5})$")
_TOKEN = re.compile(r"\S+")

_VALUED = {"ar": "ratio", "aspect": "ratio", "n": "count", "count": "count", "size": "size"}
_TIERS = {"1k": "1K", "2k": "2K", "4k": "4K"}
_SWITCHES = {"watermark": True, "no-watermark": False, "nowatermark": False}
_TWICE = {
    "size": tr("Your prompt sets the size twice."),
    "ratio": tr("Your prompt sets the aspect ratio twice."),
    "count": tr("Your prompt sets the number of images twice."),
    "watermark": tr("Your prompt sets the watermark twice."),
}


class InvalidFlag(InvalidRequest):
    """An option typed into the prompt that is unknown or has a bad value."""

    def __init__(self, problem: Text) -> None:
        message = tr("{problem} Options you can type into the prompt: {allowed}.",
                     problem=problem, allowed=ALLOWED_FLAGS)
        super().__init__(message, code="InvalidFlag")


@dataclass(frozen=True)
class PromptFlags:
    """The prompt without its flags, and what the flags set (None: not set)."""

    prompt: str
    size: str | None = None  # a parsed size: 1K/2K/4K or WxH
    ratio: tuple[int, int] | None = None
    count: int | None = None
    watermark: bool | None = None


def _shown(text: str) -> str:
    return re.sub(r"[`*_~|<>@\\]", "", text)[:40]


def parse_flags(prompt: str) -> PromptFlags:
    """Read the flags out of `prompt`; raises InvalidFlag for an unknown flag or a bad value."""
    tokens = list(_TOKEN.finditer(prompt))
    found: dict[str, object] = {}
    removed: list[tuple[int, int]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        match = _FLAG.match(token.group())
        index += 1
        if match is None:
            continue
        name, value = match.group("name").lower(), match.group("value")
        start, end = token.start(), token.end()
        if name in _VALUED:
            if value is None:
                if index >= len(tokens):
                    raise InvalidFlag(tr("`--{name}` needs a value.", name=name))
                value, end = tokens[index].group(), tokens[index].end()
                index += 1
            setting, parsed = _VALUED[name], _value(name, value)
        elif name in _TIERS and value is None:
            setting, parsed = "size", _TIERS[name]
        elif name in _SWITCHES and value is None:
            setting, parsed = "watermark", _SWITCHES[name]
        else:
            raise InvalidFlag(tr("I don't know the option `{option}`.", option=_shown(token.group())))
        if setting in found and found[setting] != parsed:
            raise InvalidFlag(_TWICE[setting])
        found[setting] = parsed
        removed.append((start, end))
    if "ratio" in found and isinstance(found.get("size"), str) and "x" in str(found["size"]):
        raise InvalidFlag(tr("`--size WxH` already sets the shape: use `--ar` with `--1k`, `--2k` or `--4k` instead."))
    return PromptFlags(
        prompt=_without(prompt, removed),
        size=found.get("size"),  # type: ignore[arg-type]
        ratio=found.get("ratio"),  # type: ignore[arg-type]
        count=found.get("count"),  # type: ignore[arg-type]
        watermark=found.get("watermark"),  # type: ignore[arg-type]
    )


def _value(name: str, value: str) -> object:
    if name in ("ar", "aspect"):
        match = _RATIO.match(value)
        if match is None or 0 in (int(match.group(1)), int(match.group(2))):
            raise InvalidFlag(tr("`--{name} {value}` is not an aspect ratio: write it as W:H, e.g. 16:9.", name=name,
                                 value=_shown(value)))
        width, height = int(match.group(1)), int(match.group(2))
        if width > MAX_ASPECT_RATIO * height or height > MAX_ASPECT_RATIO * width:
            raise InvalidFlag(tr("`--{name} {width}:{height}` is outside the aspect ratios the model makes, "
                                 "1:16 to 16:1.",
                                 name=name, width=width, height=height))
        return width, height
    if name in ("n", "count"):
        if not value.isdigit() or not 1 <= int(value) <= MAX_IMAGES:
            raise InvalidFlag(tr("`--{name} {value}`: the number of images must be 1 to {max}.", name=name,
                                 value=_shown(value), max=MAX_IMAGES))
        return int(value)
    try:
        return parse_size(value)
    except InvalidSize as error:
        raise InvalidFlag(tr("`--size {value}`: {problem}", value=_shown(value), problem=error.user_message)) from None


def _without(prompt: str, spans: list[tuple[int, int]]) -> str:
    """`prompt` with the flag spans cut out, each cut closing up the spaces around it."""
    kept, last = [], 0
    for start, end in spans:
        kept.append(prompt[last:start])
        last = end
    kept.append(prompt[last:])
    text = re.sub(r"[ \t]{2,}", " ", "".join(kept))
    return re.sub(r"[ \t]*\n[ \t]*", "\n", text).strip()
