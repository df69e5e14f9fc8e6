"""fit_jpeg: how one image is shrunk to a byte budget."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.images.reencode import (
    JPEG_QUALITIES,
    MIN_SIDE,
    ImageTooLarge,
    UnreadableImage,
    fit_jpeg,
)
from tests.delivery import encode, noise_image, png_header_only


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_quality_drops_before_the_dimensions_do() -> None:
    source = noise_image(800, 600, seed=11)
    at_92 = len(encode(source, "JPEG", quality=92, optimize=True))
    at_85 = len(encode(source, "JPEG", quality=85, optimize=True))
    budget = (at_92 + at_85) // 2

    fitted = fit_jpeg(encode(source, "PNG"), budget)

    assert (fitted.width, fitted.height, fitted.quality) == (800, 600, 85)
    assert len(fitted.content) <= budget
    assert opened(fitted.content).size == (800, 600)


def test_first_quality_is_used_when_it_already_fits() -> None:
    fitted = fit_jpeg(encode(noise_image(100, 100), "PNG"), 10**6)

    assert fitted.quality == JPEG_QUALITIES[0]


def test_downscales_keeping_the_aspect_ratio_when_quality_is_not_enough() -> None:
    source = encode(noise_image(1500, 500, seed=12), "JPEG", quality=95)

    fitted = fit_jpeg(source, 60_000)

    image = opened(fitted.content)
    assert len(fitted.content) <= 60_000
    assert image.format == "JPEG"
    assert image.size == (fitted.width, fitted.height)
    assert image.width < 1500
    assert image.width / image.height == pytest.approx(3.0, rel=0.01)


def test_exif_orientation_is_applied_before_dropping_the_metadata() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": stored 200x100, shown 100x200
    source = encode(noise_image(200, 100), "JPEG", quality=95, exif=exif.tobytes())

    fitted = fit_jpeg(source, len(source) - 1)

    assert opened(fitted.content).size == (100, 200)


def test_transparency_is_flattened_on_white() -> None:
    clear = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # red, fully transparent

    fitted = fit_jpeg(encode(clear, "PNG"), 10**6)

    image = opened(fitted.content)
    assert image.mode == "RGB"
    assert min(image.tobytes()) >= 250


def test_palette_gif_with_a_transparent_colour_is_flattened_on_white() -> None:
    gif = Image.new("P", (32, 32), 0)
    gif.putpalette([0, 0, 0] + [0, 0, 255] * 255)
    source = encode(gif, "GIF", transparency=0)

    image = opened(fit_jpeg(source, 10**6).content)

    assert image.getpixel((16, 16)) == pytest.approx((255, 255, 255), abs=3)


def test_cmyk_jpeg_becomes_rgb() -> None:
    source = encode(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95)

    image = opened(fit_jpeg(source, 10**6).content)

    assert image.mode == "RGB"


def test_gives_up_when_even_the_smallest_version_is_too_big() -> None:
    source = encode(noise_image(400, 400), "JPEG", quality=95)

    with pytest.raises(ImageTooLarge) as caught:
        fit_jpeg(source, 150)

    assert caught.value.size == len(source)
    assert caught.value.limit == 150


def test_a_tiny_budget_still_yields_a_picture_of_at_least_the_minimum_side() -> None:
    source = encode(noise_image(1000, 1000), "JPEG", quality=95)

    fitted = fit_jpeg(source, 3_000)

    assert min(fitted.width, fitted.height) >= MIN_SIDE
    assert len(fitted.content) <= 3_000


def test_image_above_the_pixel_cap_is_refused_before_decoding() -> None:
    with pytest.raises(UnreadableImage):
        fit_jpeg(png_header_only(9000, 8000), 1000)  # 72 MP: above our 64 MP cap, below Pillow's


def test_decompression_bomb_is_refused() -> None:
    with pytest.raises(UnreadableImage):
        fit_jpeg(png_header_only(50_000, 50_000), 1000)


def test_truncated_image_is_unreadable() -> None:
    source = encode(noise_image(300, 300), "JPEG", quality=95)

    with pytest.raises(UnreadableImage):
        fit_jpeg(source[: len(source) // 2], 1000)


def test_bytes_that_are_no_image_are_unreadable() -> None:
    with pytest.raises(UnreadableImage):
        fit_jpeg(b"%PDF-1.7\n" + b"x" * 5000, 1000)
