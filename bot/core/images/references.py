"""Validate reference images before they reach the relay, and encode them as data URIs.

The type is read from the bytes (Pillow), never from the filename or the declared
content type. Each failure is an `InvalidReference` whose `user_message` names the
image and the rule in words a Discord member understands.

Decoding is bounded: a 148 KiB PNG can hold 36 MP (139 MiB decoded), so every decode runs
in a worker thread under the process-wide pixel budget (budget.py), one reference at a time.
What the model may not take is normalised before encoding (CMYK -> RGB, an animation's first
frame, 16-bit -> 8-bit, BMP/TIFF/GIF -> PNG) and a reference larger than the model's largest
output is downscaled to it.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, ImageFile, UnidentifiedImageError

from bot.core.errors import UserFacingError
from bot.core.format import megabytes, number, size_over
from bot.core.i18n import Text, tr, trn
from bot.core.images.budget import DECODE_BUDGET
from bot.core.images.reencode import flatten
from bot.core.images.sizes import TIER_PIXELS
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
# Sent as they are when nothing else needs changing; the others are converted to PNG.
_PASS_THROUGH = frozenset({"image/jpeg", "image/png", "image/webp"})
_PASS_THROUGH_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P"})
_WITH_ALPHA = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Modes holding more than 8 bits a channel: scaled down to 8-bit grey.
_WIDE_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
# A reference is conditioning input: the 2K tier's pixel count carries what the model reads from
# it; more only costs bytes, memory and encoding time (a 36 MP PNG takes seconds to encode).
SENT_MAX_PIXELS = TIER_PIXELS["2K"]
PNG_COMPRESS_LEVEL = 3

_T = TypeVar("_T")
_IMAGE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="references")

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
    # Whether `to_data_uri` must re-encode it (odd mode, animation, 16-bit, too many pixels).
    normalise: bool = False


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
    return await _in_image_thread(_inspect_sync, name, display_name(name), content, rules)


async def _in_image_thread(func: Callable[..., _T], *args: object) -> _T:
    """Run reference decoding on its one thread: decodes queue instead of piling up, and
    their large buffers come from one malloc arena instead of one per worker thread."""
    return await asyncio.get_running_loop().run_in_executor(_IMAGE_THREAD, functools.partial(func, *args))


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
        image = Image.open(io.BytesIO(content), formats=_pillow_formats(rules))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, NotImplementedError):
        raise not_accepted from None
    except Exception:  # a Pillow plugin meeting a hostile file may raise anything
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
        normalise = _needs_normalising(image, content_type)
        try:
            with DECODE_BUDGET.hold(width * height):
                image.load()  # catch truncated or corrupt files here, not at the relay
        except Exception:  # OSError for a truncated file; a hostile one may raise anything
            raise InvalidReference(
                tr("“{name}” looks damaged or incomplete; please upload it again.", name=shown), rule="damaged",
                name=name
            ) from None
    return ReferenceImage(
        name=name, content=content, content_type=content_type, width=width, height=height, normalise=normalise
    )


def _pillow_formats(rules: ReferenceRules) -> list[str]:
    """Only the accepted formats' plugins ever see a member's bytes (JPEG's also opens MPO)."""
    return [fmt for fmt, kind in _FORMATS.items() if kind in rules.accepted and fmt != "MPO"]


def _needs_normalising(image: Image.Image, content_type: str) -> bool:
    tiles = image.tile if isinstance(image, ImageFile.ImageFile) else []
    wide = any(";16" in str(tile.args) for tile in tiles if tile.args)
    return (
        content_type not in _PASS_THROUGH
        or image.format == "MPO"
        or getattr(image, "n_frames", 1) > 1
        or image.mode not in _PASS_THROUGH_MODES
        or wide
        or image.width * image.height > SENT_MAX_PIXELS
    )


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

    A plain JPEG, PNG or WebP passes through unchanged; anything else is normalised (see
    the module docstring) to PNG, or to JPEG for a JPEG source or a PNG above `max_bytes`.
    That decodes the image: call from a worker thread, or use `encode_references`.
    """
    content_type = ref.content_type.lower()
    content = ref.content
    if ref.normalise or content_type not in _PASS_THROUGH:
        content_type, content = _normalised(content, max_bytes)
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"


async def encode_references(refs: Sequence[ReferenceImage]) -> tuple[str, ...]:
    """Data URIs for `refs`, in order (for `GenerationRequest.references`), built one at a time in a thread."""
    return await _in_image_thread(lambda: tuple(to_data_uri(ref) for ref in refs))


def _normalised(content: bytes, max_bytes: int) -> tuple[str, bytes]:
    with Image.open(io.BytesIO(content)) as image, DECODE_BUDGET.hold(image.width * image.height):
        lossy = image.format in ("JPEG", "MPO")
        scale = min(1.0, (SENT_MAX_PIXELS / (image.width * image.height)) ** 0.5)
        target = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        if lossy and scale < 1:
            image.draft(image.mode, target)  # decode a JPEG at a reduced scale where it can
        image.seek(0)  # an animation's first frame
        image.load()
        frame = _eight_bit(image)
        if scale < 1 and frame.size != target:
            # A cheap integer reduction first keeps Lanczos's intermediate image small.
            factor = int(min(frame.width / target[0], frame.height / target[1]))
            if factor >= 2:
                reduced = frame.reduce(factor)
                frame.close()  # frees the full-size pixels before the resize allocates more
                image.close()
                frame = reduced
            frame = frame.resize(target, Image.Resampling.LANCZOS)
        if frame.mode != "RGBA" and lossy:
            return "image/jpeg", _save(frame, "JPEG", quality=92)
        png = _save(frame, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        if len(png) <= max_bytes:
            return "image/png", png
        return "image/jpeg", _save(flatten(frame), "JPEG", quality=92)


def _eight_bit(image: Image.Image) -> Image.Image:
    """The loaded frame as 8-bit RGB, RGBA or L (the image itself when it already is)."""
    if image.mode in _WIDE_MODES:
        wide = image.convert("I") if image.mode.startswith("I;16") else image
        return wide.point(lambda value: value * (1 / 257)).convert("L")
    if image.mode in _WITH_ALPHA or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


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


