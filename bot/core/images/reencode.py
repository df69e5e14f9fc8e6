"""Pillow work for delivery: shrink one image until it fits a byte budget.

Everything here is synchronous and CPU-bound; callers run it in a worker thread
(`asyncio.to_thread`). The process-wide pixel budget (budget.py) bounds how many large
images are decoded at once, so a burst of 4K sets cannot exhaust memory.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.core.errors import UserFacingError
from bot.core.i18n import Text, tr
from bot.core.images.budget import DECODE_BUDGET

# Seedream's largest outputs are about 16.8 MP (4096x4096, 6240x2656); 64 MP leaves room for
# bigger models while refusing decompression bombs. Checked per call from the header, before
# any pixel is decoded, so it does not depend on (or change) Pillow's global MAX_IMAGE_PIXELS.
MAX_DECODE_PIXELS = 64_000_000

# Tried in order at full size, before any downscaling.
JPEG_QUALITIES = (92, 85, 75)
# Each downscale step shrinks both sides by at least this factor (more when the byte
# count says a small step cannot be enough).
SCALE_STEP = 0.85
# Below this shorter side the picture is useless; give up instead of sending a smudge.
MIN_SIDE = 16


class DeliveryError(UserFacingError):
    """An image cannot be delivered. `user_message` is safe to show in Discord."""

    user_message = tr("The image could not be delivered.")

    def __init__(self, user_message: Text | str | None = None, *, index: int | None = None) -> None:
        self.index = index
        super().__init__(user_message)


class ImageTooLarge(DeliveryError):
    """Even re-encoded and downscaled to a tiny size the image exceeds the limit."""

    user_message = tr("The image is too large to upload here, even after shrinking it.")

    def __init__(
        self,
        user_message: Text | str | None = None,
        *,
        index: int | None = None,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        self.size = size
        self.limit = limit
        super().__init__(user_message, index=index)


class UnreadableImage(DeliveryError):
    """The image must be shrunk but cannot be decoded (corrupt, unknown or a decompression bomb)."""

    user_message = tr("The image is too large to upload here and could not be read to shrink it.")


@dataclass(frozen=True)
class FittedJpeg:
    content: bytes
    width: int
    height: int
    quality: int


def fit_jpeg(data: bytes, max_bytes: int, *, max_pixels: int = MAX_DECODE_PIXELS) -> FittedJpeg:
    """Return a JPEG of at most `max_bytes` showing the same picture as `data`.

    Quality drops first (92 -> 85 -> 75) at the original dimensions; then the image is
    downscaled with Lanczos resampling, keeping its aspect ratio, until it fits. Transparency
    is flattened on white. Raises `ImageTooLarge` when even a tiny version does not fit and
    `UnreadableImage` when `data` cannot be decoded safely.
    """
    if max_bytes <= 0:
        raise ImageTooLarge(size=len(data), limit=max_bytes)
    with open_checked(data, max_pixels) as header, DECODE_BUDGET.hold(header.width * header.height):
        image = _decode_for_jpeg(header)
        icc_profile = image.info.get("icc_profile")

        encoded = b""
        for quality in JPEG_QUALITIES:
            encoded = _encode_jpeg(image, quality, icc_profile)
            if len(encoded) <= max_bytes:
                return FittedJpeg(encoded, image.width, image.height, quality)

        quality = JPEG_QUALITIES[-1]
        width, height = image.size
        scale = 1.0
        while True:
            # JPEG size at a fixed quality grows roughly with the pixel count.
            scale *= min(SCALE_STEP, math.sqrt(max_bytes / len(encoded)))
            new_width, new_height = max(1, round(width * scale)), max(1, round(height * scale))
            if min(new_width, new_height) < MIN_SIDE:
                raise ImageTooLarge(size=len(data), limit=max_bytes)
            resized = image.resize((new_width, new_height), Image.Resampling.LANCZOS, reducing_gap=3.0)
            encoded = _encode_jpeg(resized, quality, icc_profile)
            if len(encoded) <= max_bytes:
                return FittedJpeg(encoded, new_width, new_height, quality)


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open `data` lazily (header only) and refuse images above `max_pixels`.

    Raises `UnreadableImage` for anything Pillow cannot identify and for bombs.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImage("The image has far too many pixels to process.") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise UnreadableImage() from error
    if image.width * image.height > max_pixels:
        image.close()
        raise UnreadableImage("The image has far too many pixels to process.")
    return image


def decodes(data: bytes, max_pixels: int = MAX_DECODE_PIXELS) -> bool:
    """Whether `data` is a whole image: every pixel decodes (a truncated file does not)."""
    try:
        with open_checked(data, max_pixels) as image, DECODE_BUDGET.hold(image.width * image.height):
            image.load()
    except Exception:  # UnreadableImage, or anything a Pillow plugin raises for a hostile file
        return False
    return True


def _decode_for_jpeg(image: Image.Image) -> Image.Image:
    try:
        image.load()
        icc_profile = image.info.get("icc_profile")
        upright = ImageOps.exif_transpose(image)
        flat = flatten(upright)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage() from error
    finally:
        image.close()
    if icc_profile:
        flat.info["icc_profile"] = icc_profile
    return flat


def flatten(image: Image.Image) -> Image.Image:
    """`image` as RGB (or L), transparency composited onto white; may return `image` itself."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image, quality: int, icc_profile: bytes | None) -> bytes:
    buffer = io.BytesIO()
    # No `optimize`: its extra Huffman pass holds the GIL (~300 ms for a 4096x4096 photo), which
    # would stall the event loop even from a worker thread; the quality ladder makes up the bytes.
    options: dict[str, object] = {"quality": quality}
    if icc_profile:
        options["icc_profile"] = icc_profile
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()
