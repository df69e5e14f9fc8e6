"""Validate reference images before they reach the relay, and encode them as data URIs.

The type is read from the bytes (Pillow), never from the filename or the declared
content type. Each failure is an `InvalidReference` whose `user_message` names the
image and the rule in words a Discord member understands.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.delivery.reencode import MAX_DECODE_PIXELS, flatten

# Pillow format name -> MIME type. MPO is the multi-picture JPEG many phone cameras write.
_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}
# Sent as they are; the others are converted to PNG (relays may not take them).
_PASS_THROUGH = frozenset({"image/jpeg", "image/png", "image/webp"})

_FRIENDLY = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/gif": "GIF",
}


@dataclass(frozen=True)
class ReferenceRules:
    """Seedream 4.0 limits for reference images (current BytePlus text)."""

    max_bytes: int = 10 * 2**20
    min_side: int = 15  # each side must be > 14 px
    max_pixels: int = 36_000_000
    min_ratio: float = 1 / 16
    max_ratio: float = 16.0
    max_count: int = 14
    max_total_with_outputs: int = 15
    accepted: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/gif",
    )


DEFAULT_RULES = ReferenceRules()


@dataclass(frozen=True)
class ReferenceImage:
    """A validated reference. `content_type` is the detected type, not the declared one."""

    name: str
    content: bytes
    content_type: str
    width: int
    height: int


class InvalidReference(Exception):
    """A reference image (or their number) breaks a rule. `user_message` is safe for Discord.

    `rule` names the broken rule for logs and tests: "type", "damaged", "bytes",
    "min_side", "pixels", "ratio", "count" or "total".
    """

    def __init__(self, user_message: str, *, rule: str, name: str | None = None) -> None:
        self.user_message = user_message
        self.rule = rule
        self.name = name
        super().__init__(user_message)


async def inspect_reference(
    name: str, content: bytes, rules: ReferenceRules = DEFAULT_RULES
) -> ReferenceImage:
    """Check one reference image against `rules`; the decoding runs in a worker thread."""
    shown = display_name(name)
    if len(content) > rules.max_bytes:
        raise InvalidReference(
            f"“{shown}” is {_size_over(len(content), rules.max_bytes)}; reference images can be at most "
            f"{_megabytes(rules.max_bytes)}.",
            rule="bytes",
            name=name,
        )
    return await asyncio.to_thread(_inspect_sync, name, shown, content, rules)


def _inspect_sync(name: str, shown: str, content: bytes, rules: ReferenceRules) -> ReferenceImage:
    not_accepted = InvalidReference(
        f"“{shown}” is not an image the model accepts ({_accepted_names(rules)}).", rule="type", name=name
    )
    too_many_pixels = InvalidReference(
        f"“{shown}” has too many pixels; reference images can have at most "
        f"{_megapixels(rules.max_pixels)} megapixels.",
        rule="pixels",
        name=name,
    )
    try:
        image = Image.open(io.BytesIO(content))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise not_accepted from None

    with image:
        content_type = _FORMATS.get(image.format or "")
        if content_type is None or content_type not in rules.accepted:
            raise not_accepted
        width, height = image.size
        dimensions = _dimensions(width, height)
        if min(width, height) < rules.min_side:
            raise InvalidReference(
                f"“{shown}” is only {dimensions} pixels; each side of a reference image must be "
                f"at least {rules.min_side} pixels.",
                rule="min_side",
                name=name,
            )
        if width * height > rules.max_pixels:
            raise InvalidReference(
                f"“{shown}” is {dimensions} pixels ({_megapixels(width * height)} megapixels); "
                f"reference images can have at most {_megapixels(rules.max_pixels)} megapixels.",
                rule="pixels",
                name=name,
            )
        ratio = width / height
        if not rules.min_ratio <= ratio <= rules.max_ratio:
            longest = rules.max_ratio if ratio > 1 else 1 / rules.min_ratio
            raise InvalidReference(
                f"“{shown}” is {dimensions} pixels, too {'wide' if ratio > 1 else 'tall'}: "
                f"a reference image can be at most {_number(longest)} times as "
                f"{'wide as it is tall' if ratio > 1 else 'tall as it is wide'}.",
                rule="ratio",
                name=name,
            )
        try:
            image.load()  # catch truncated or corrupt files here, not at the relay
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise InvalidReference(
                f"“{shown}” looks damaged or incomplete; please upload it again.", rule="damaged", name=name
            ) from None
    return ReferenceImage(name=name, content=content, content_type=content_type, width=width, height=height)


def check_counts(n_refs: int, n_outputs: int, rules: ReferenceRules = DEFAULT_RULES) -> None:
    """Refuse more references than the model takes, or references plus outputs above its total."""
    if n_refs > rules.max_count:
        raise InvalidReference(
            f"You attached {n_refs} reference images; at most {rules.max_count} are allowed.", rule="count"
        )
    if n_refs + n_outputs > rules.max_total_with_outputs:
        room = rules.max_total_with_outputs - n_refs
        raise InvalidReference(
            f"{_plural(n_refs, 'reference image')} plus {_plural(n_outputs, 'requested image')} is more "
            f"than the model allows: at most {rules.max_total_with_outputs} in total, so with "
            f"{_plural(n_refs, 'reference')} you can ask for up to {_plural(room, 'image')}.",
            rule="total",
        )


def to_data_uri(ref: ReferenceImage, *, max_bytes: int = DEFAULT_RULES.max_bytes) -> str:
    """`data:image/<fmt>;base64,...` with a lowercase format, as the API requires.

    JPEG, PNG and WebP pass through unchanged. BMP, TIFF and GIF (first frame) are
    converted to PNG, or to JPEG if the PNG would exceed `max_bytes`. That conversion
    decodes the image: call from a worker thread, or use `encode_references`.
    """
    content_type = ref.content_type.lower()
    content = ref.content
    if content_type not in _PASS_THROUGH:
        content_type, content = _convert(content, max_bytes)
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"


async def encode_references(refs: Sequence[ReferenceImage]) -> tuple[str, ...]:
    """Data URIs for `refs`, in order (for `GenerationRequest.references`), built in a thread."""
    return await asyncio.to_thread(lambda: tuple(to_data_uri(ref) for ref in refs))


def _convert(content: bytes, max_bytes: int) -> tuple[str, bytes]:
    with Image.open(io.BytesIO(content)) as image:
        if image.width * image.height > MAX_DECODE_PIXELS:
            raise ValueError("image too large to convert")
        image.seek(0)
        frame = image.convert("RGBA") if _has_alpha(image) else image.convert("RGB")
    buffer = io.BytesIO()
    frame.save(buffer, "PNG", optimize=False, compress_level=6)
    if buffer.tell() <= max_bytes:
        return "image/png", buffer.getvalue()
    buffer = io.BytesIO()
    flatten(frame).save(buffer, "JPEG", quality=92)
    return "image/jpeg", buffer.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def display_name(name: str, limit: int = 60) -> str:
    """The filename as it should appear in a Discord message: one line, short, markdown escaped."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip() or "image"
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return re.sub(r"([\\*_~`|>\[\]])", r"\\\1", cleaned)


def _accepted_names(rules: ReferenceRules) -> str:
    names = [_FRIENDLY.get(kind, kind.removeprefix("image/").upper()) for kind in rules.accepted]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _size_over(size: int, limit: int) -> str:
    """`size` in MB, worded so it never reads as equal to the `limit` it exceeds."""
    shown = _megabytes(size)
    return f"just over {_megabytes(limit)}" if shown == _megabytes(limit) else shown


def _megabytes(size: int) -> str:
    return f"{_number(size / 2**20)} MB"


def _dimensions(width: int, height: int) -> str:
    return f"{width}\N{MULTIPLICATION SIGN}{height}"


def _megapixels(pixels: int) -> str:
    return _number(pixels / 1_000_000)


def _number(value: float) -> str:
    """One decimal at most, none when it is whole: 10 -> "10", 12.34 -> "12.3"."""
    return f"{value:.1f}".removesuffix(".0")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
