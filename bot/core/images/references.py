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

from bot.core.errors import UserFacingError
from bot.core.format import megabytes, number, size_over
from bot.core.i18n import Text, tr, trn
from bot.core.images.reencode import MAX_DECODE_PIXELS, flatten
from bot.core.limits import (
    MAX_ASPECT_RATIO,
    MAX_IMAGES,
    MAX_REFERENCE_BYTES,
    MAX_REFERENCE_PIXELS,
    MAX_REFERENCES,
    MIN_REFERENCE_SIDE,
)

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

    max_bytes: int = MAX_REFERENCE_BYTES
    min_side: int = MIN_REFERENCE_SIDE
    max_pixels: int = MAX_REFERENCE_PIXELS
    min_ratio: float = 1 / MAX_ASPECT_RATIO
    max_ratio: float = MAX_ASPECT_RATIO
    max_count: int = MAX_REFERENCES
    max_total_with_outputs: int = MAX_IMAGES
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


class InvalidReference(UserFacingError):
    """A reference image (or their number) breaks a rule. `user_message` is safe for Discord.

    `rule` names the broken rule for logs and tests: "type", "damaged", "bytes",
    "min_side", "pixels", "ratio", "count" or "total".
    """

    def __init__(self, user_message: Text, *, rule: str, name: str | None = None) -> None:
        self.rule = rule
        self.name = name
        super().__init__(user_message)


async def inspect_reference(
    name: str, content: bytes, rules: ReferenceRules = DEFAULT_RULES
) -> ReferenceImage:
    """Check one reference image against `rules`; the decoding runs in a worker thread."""
    check_byte_size(name, len(content), rules)
    return await asyncio.to_thread(_inspect_sync, name, display_name(name), content, rules)


def check_byte_size(name: str, size: int, rules: ReferenceRules = DEFAULT_RULES) -> None:
    """The "too many bytes" rule, for a declared size before a download and for the bytes after."""
    if size > rules.max_bytes:
        raise InvalidReference(
            tr("“{name}” is {size}; reference images can be at most {limit}.", name=display_name(name),
               size=size_over(size, rules.max_bytes), limit=megabytes(rules.max_bytes)),
            rule="bytes",
            name=name,
        )


def _inspect_sync(name: str, shown: str, content: bytes, rules: ReferenceRules) -> ReferenceImage:
    not_accepted = InvalidReference(
        tr("“{name}” is not an image the model accepts ({accepted}).", name=shown, accepted=_accepted_names(rules)),
        rule="type", name=name
    )
    too_many_pixels = InvalidReference(
        tr("“{name}” has too many pixels; reference images can have at most {limit} megapixels.", name=shown,
           limit=_megapixels(rules.max_pixels)),
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
                tr("“{name}” is only {dimensions} pixels; each side of a reference image must be "
                   "at least {min_side} pixels.", name=shown, dimensions=dimensions, min_side=rules.min_side),
                rule="min_side",
                name=name,
            )
        if width * height > rules.max_pixels:
            raise InvalidReference(
                tr("“{name}” is {dimensions} pixels ({megapixels} megapixels); "
                   "reference images can have at most {limit} megapixels.", name=shown, dimensions=dimensions,
                   megapixels=_megapixels(width * height), limit=_megapixels(rules.max_pixels)),
                rule="pixels",
                name=name,
            )
        ratio = width / height
        if not rules.min_ratio <= ratio <= rules.max_ratio:
            longest = rules.max_ratio if ratio > 1 else 1 / rules.min_ratio
            raise InvalidReference(
                (tr("“{name}” is {dimensions} pixels, too wide: a reference image can be at most {ratio} times "
                    "as wide as it is tall.", name=shown, dimensions=dimensions, ratio=number(longest))
                 if ratio > 1 else
                 tr("“{name}” is {dimensions} pixels, too tall: a reference image can be at most {ratio} times "
                    "as tall as it is wide.", name=shown, dimensions=dimensions, ratio=number(longest))),
                rule="ratio",
                name=name,
            )
        try:
            image.load()  # catch truncated or corrupt files here, not at the relay
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise InvalidReference(
                tr("“{name}” looks damaged or incomplete; please upload it again.", name=shown), rule="damaged",
                name=name
            ) from None
    return ReferenceImage(name=name, content=content, content_type=content_type, width=width, height=height)


def check_counts(n_refs: int, n_outputs: int, rules: ReferenceRules = DEFAULT_RULES) -> None:
    """Refuse more references than the model takes, or references plus outputs above its total."""
    if n_refs > rules.max_count:
        raise InvalidReference(
            tr("You attached {count} reference images; at most {max} are allowed.", count=n_refs,
               max=rules.max_count), rule="count"
        )
    if n_refs + n_outputs > rules.max_total_with_outputs:
        room = rules.max_total_with_outputs - n_refs
        raise InvalidReference(
            tr("{references} plus {outputs} is more than the model allows: at most {max} in total, so with "
               "{with_references} you can ask for up to {room}.",
               references=trn("{count} reference image", "{count} reference images", n_refs),
               outputs=trn("{count} requested image", "{count} requested images", n_outputs),
               max=rules.max_total_with_outputs,
               with_references=trn("{count} reference", "{count} references", n_refs),
               room=trn("{count} image", "{count} images", room)),
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


def _accepted_names(rules: ReferenceRules) -> Text | str:
    names = [_FRIENDLY.get(kind, kind.removeprefix("image/").upper()) for kind in rules.accepted]
    return names[0] if len(names) == 1 else tr("{names} or {last}", names=", ".join(names[:-1]), last=names[-1])



def _dimensions(width: int, height: int) -> str:
    return f"{width}\N{MULTIPLICATION SIGN}{height}"


def _megapixels(pixels: int) -> str:
    return number(pixels / 1_000_000)


