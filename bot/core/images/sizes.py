"""Seedream 4.0 output sizes: parsing what a member typed, presets and autocomplete.

Rules (Seedream 4.0 API reference, `size`): a tier keyword `1K`/`2K`/`4K`, or `WxH` whose pixel count
lies in [921 600, 16 777 216] and whose aspect ratio lies in [1:16, 16:1]. The limit is on
the product, so `1600x600` is valid while `800x800` is not.
"""

from __future__ import annotations

import math
import re

from bot.core.i18n import Text, join, tr
from bot.core.limits import MAX_ASPECT_RATIO
from bot.core.relay.errors import InvalidRequest

TIERS: tuple[str, ...] = ("1K", "2K", "4K")
MIN_PIXELS = 921_600  # 1280x720
MAX_PIXELS = 16_777_216  # 4096x4096
MAX_RATIO = MAX_ASPECT_RATIO

_WXH = re.compile(r"^\s*(\d{1,6})\s*[xX\u00d7*]\s*(\d{1,6})\s*(?:px)?\s*$")

SIZE_RULES = tr(
    "Use 1K, 2K or 4K, or WIDTHxHEIGHT with 921,600 to 16,777,216 pixels in total "
    "(1280x720 up to 4096x4096 worth of pixels) and an aspect ratio between 1:16 and 16:1, "
    "for example 2048x2048 or 2848x1600."
)


class InvalidSize(InvalidRequest):
    """The size a member typed is not one Seedream 4.0 accepts."""

    user_message = tr("That size isn't supported. {rules}", rules=SIZE_RULES)

    def __init__(self, reason: Text | None = None) -> None:
        message = join([reason, SIZE_RULES]) if reason else None
        super().__init__(message, code="InvalidSize")


# Ratio presets from the official 4.0 reference table (Seedream 4.0 API reference, recommended sizes). Every 4K
# entry was checked against the rules: 4096x4096 sits exactly on the pixel cap, and
# 5504x3040 (16,732,160 px), 4704x3520 (16,558,080 px) and 6240x2656 (16,573,440 px) are
# all under it, so no entry needed replacing. tests/seedream/test_sizes.py re-checks them.
SIZE_PRESETS: list[tuple[str, str]] = [
    (tr("1K (model picks the shape)"), "1K"),
    (tr("2K (model picks the shape)"), "2K"),
    (tr("4K (model picks the shape)"), "4K"),
    (tr("Square 1:1 2K (2048x2048)"), "2048x2048"),
    (tr("Landscape 16:9 2K (2848x1600)"), "2848x1600"),
    (tr("Portrait 9:16 2K (1600x2848)"), "1600x2848"),
    (tr("Landscape 4:3 2K (2304x1728)"), "2304x1728"),
    (tr("Portrait 3:4 2K (1728x2304)"), "1728x2304"),
    (tr("Cinema 21:9 2K (3136x1344)"), "3136x1344"),
    (tr("Square 1:1 4K (4096x4096)"), "4096x4096"),
    (tr("Landscape 16:9 4K (5504x3040)"), "5504x3040"),
    (tr("Portrait 9:16 4K (3040x5504)"), "3040x5504"),
    (tr("Landscape 4:3 4K (4704x3520)"), "4704x3520"),
    (tr("Portrait 3:4 4K (3520x4704)"), "3520x4704"),
    (tr("Cinema 21:9 4K (6240x2656)"), "6240x2656"),
]

MAX_SUGGESTIONS = 25

# Each tier keyword's pixel budget: the square of its name (1K = 1024x1024 worth of pixels).
TIER_PIXELS: dict[str, int] = {"1K": 1024 * 1024, "2K": 2048 * 2048, "4K": 4096 * 4096}
RATIO_TOLERANCE = 0.01


def size_pixels(value: str) -> tuple[int, int] | None:
    """(width, height) of a `WxH` value (any accepted separator); None for tiers or junk."""
    match = _WXH.match(value)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _problem(width: int, height: int) -> Text | None:
    """Why `width`x`height` is not allowed, or None when it is."""
    if width <= 0 or height <= 0:
        return tr("Width and height must be positive.")
    pixels = width * height
    if pixels < MIN_PIXELS:
        return tr("{width}x{height} is too small ({pixels:,} pixels).", width=width, height=height, pixels=pixels)
    if pixels > MAX_PIXELS:
        return tr("{width}x{height} is too large ({pixels:,} pixels).", width=width, height=height, pixels=pixels)
    if width > MAX_RATIO * height or height > MAX_RATIO * width:
        return tr("{width}x{height} is too narrow (the aspect ratio must stay within 16:1).", width=width,
                  height=height)
    return None


def parse_size(text: str) -> str:
    """Normalize a typed size to `1K`/`2K`/`4K` or `WxH`, or raise InvalidSize."""
    cleaned = text.strip()
    if cleaned.upper() in TIERS:
        return cleaned.upper()
    dimensions = size_pixels(cleaned)
    if dimensions is None:
        return _raise_unreadable(cleaned)
    width, height = dimensions
    problem = _problem(width, height)
    if problem is not None:
        raise InvalidSize(problem)
    return f"{width}x{height}"


def size_for_ratio(width_part: int, height_part: int, base: str) -> str:
    """`WxH` with the ratio `width_part:height_part` (within 1 %) at `base`'s pixel budget.

    `base` is a parsed size: a tier's budget is its square, a `WxH`'s its own pixel count. The
    result stays inside the model's limits (never above 4096x4096 worth of pixels), preferring
    sides that are multiples of 16 and falling back to finer steps for extreme ratios.
    """
    if width_part <= 0 or height_part <= 0:
        raise InvalidSize(tr("Both sides of an aspect ratio must be positive whole numbers, e.g. 16:9."))
    ratio = width_part / height_part
    if ratio > MAX_RATIO or ratio < 1 / MAX_RATIO:
        raise InvalidSize(tr("The aspect ratio {width}:{height} is outside 1:16 to 16:1.",
                              width=width_part, height=height_part))
    dimensions = size_pixels(base)
    budget = TIER_PIXELS[base] if dimensions is None else dimensions[0] * dimensions[1]
    budget = min(max(budget, MIN_PIXELS), MAX_PIXELS)
    ideal_height = math.sqrt(budget / ratio)
    for step in (16, 8, 2, 1):  # coarse steps first: encoders and the model like multiples of 16
        best: tuple[float, int, int] | None = None
        centre = round(ideal_height / step)
        for height in (step * k for k in range(max(1, centre - 3), centre + 4)):
            width = max(step, round(height * ratio / step) * step)
            ratio_error = abs(width / height / ratio - 1)
            pixel_error = abs(width * height / budget - 1)
            if (_problem(width, height) is None and ratio_error <= RATIO_TOLERANCE
                    and pixel_error <= RATIO_TOLERANCE
                    and (best is None or ratio_error + pixel_error < best[0])):
                best = (ratio_error + pixel_error, width, height)
        if best is not None:
            return f"{best[1]}x{best[2]}"
    raise InvalidSize(tr("I can't make {width}:{height} at that size.", width=width_part, height=height_part))


def _raise_unreadable(text: str) -> str:
    shown = re.sub(r"[`*_~|<>@\\]", "", text)[:40]
    raise InvalidSize(tr("I couldn't read `{shown}` as a size.", shown=shown) if shown else tr("The size is empty."))


def _normalize_query(text: str) -> str:
    return re.sub(r"\s+", "", text.lower().replace("\u00d7", "x").replace("*", "x"))


def suggest_sizes(typed: str) -> list[tuple[str, str]]:
    """Up to 25 (label, value) autocomplete choices for what has been typed so far.

    A typed value that is itself valid comes first (normalized); then the presets whose
    label or value contains the typed text.
    """
    suggestions: list[tuple[str, str]] = []
    exact: str | None = None
    try:
        exact = parse_size(typed)
    except InvalidSize:
        exact = None
    if exact is not None:
        preset_label = next((label for label, value in SIZE_PRESETS if value == exact), None)
        suggestions.append((preset_label or exact, exact))
    query = _normalize_query(typed)
    for label, value in SIZE_PRESETS:
        if value == exact:
            continue
        if not query or query in _normalize_query(label) or query in value.lower():
            suggestions.append((label, value))
    return suggestions[:MAX_SUGGESTIONS]

# An image at least this large is 4K already; upscaling it again would add nothing.
ALREADY_4K_PIXELS = int(MAX_PIXELS * 0.8)


def upscale_size(width: int | None, height: int | None) -> str:
    """A 4K size with the image's aspect ratio (multiples of 16), or `4K` when it is unknown."""
    if not width or not height:
        return "4K"
    if width * height >= ALREADY_4K_PIXELS:
        raise AlreadyFourK(tr("This image is already 4K ({width}×{height}); upscaling it again adds nothing.",
                                width=width, height=height))
    scale = math.sqrt(MAX_PIXELS / (width * height))
    new_width, new_height = int(width * scale) // 16 * 16, int(height * scale) // 16 * 16
    if (new_width * new_height < MIN_PIXELS or new_width > MAX_RATIO * new_height
            or new_height > MAX_RATIO * new_width):
        return "4K"
    return f"{new_width}x{new_height}"


class AlreadyFourK(InvalidRequest):
    """Upscaling an image that is 4K already would add nothing."""
