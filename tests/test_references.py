"""Reference images: what is accepted, what a member is told when not, and how they are sent."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from bot.core.images.references import (
    InvalidReference,
    ReferenceImage,
    ReferenceRules,
    check_counts,
    encode_references,
    inspect_reference,
    to_data_uri,
)
from tests.delivery import encode, noise_image, png_header_only

MiB = 2**20


def jpeg(width: int = 64, height: int = 48) -> bytes:
    return encode(noise_image(width, height), "JPEG", quality=90)


def png(width: int, height: int) -> bytes:
    return encode(Image.new("RGB", (width, height), (10, 20, 30)), "PNG")


def decode_data_uri(uri: str) -> tuple[str, Image.Image]:
    prefix, payload = uri.split(",", 1)
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return prefix, image


async def rejected(name: str, content: bytes, rules: ReferenceRules | None = None) -> InvalidReference:
    with pytest.raises(InvalidReference) as caught:
        if rules is None:
            await inspect_reference(name, content)
        else:
            await inspect_reference(name, content, rules)
    return caught.value


# --- accepted ---------------------------------------------------------------------------


async def test_valid_jpeg_is_accepted_with_its_dimensions() -> None:
    data = jpeg(64, 48)

    ref = await inspect_reference("cat.jpg", data)

    assert ref == ReferenceImage(name="cat.jpg", content=data, content_type="image/jpeg", width=64, height=48)


async def test_type_comes_from_the_bytes_not_the_filename() -> None:
    ref = await inspect_reference("really-a-jpeg.png", jpeg())

    assert ref.content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("GIF", "image/gif"),
    ],
)
async def test_every_accepted_format_is_recognised(fmt: str, content_type: str) -> None:
    data = encode(Image.new("RGB", (40, 30), (200, 100, 50)), fmt)

    ref = await inspect_reference(f"ref.{fmt.lower()}", data)

    assert (ref.content_type, ref.width, ref.height) == (content_type, 40, 30)


async def test_smallest_side_and_extreme_ratio_at_the_boundary_are_accepted() -> None:
    ref = await inspect_reference("strip.png", png(15, 240))  # 15 px side, exactly 1:16

    assert (ref.width, ref.height) == (15, 240)


# --- rejected, one rule at a time --------------------------------------------------------


async def test_text_file_is_not_an_image_the_model_accepts() -> None:
    error = await rejected("notes.txt", b"shopping list: eggs, milk\n")

    assert error.user_message == (
        "\N{LEFT DOUBLE QUOTATION MARK}notes.txt\N{RIGHT DOUBLE QUOTATION MARK} is not an image the model "
        "accepts (JPEG, PNG, WebP, BMP, TIFF or GIF)."
    )
    assert (error.rule, error.name) == ("type", "notes.txt")


async def test_pdf_is_not_accepted_even_when_named_like_an_image() -> None:
    error = await rejected("scan.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")

    assert error.rule == "type"
    assert "scan.png" in error.user_message


async def test_an_image_format_the_model_does_not_take_is_refused() -> None:
    icon = encode(Image.new("RGB", (32, 32)), "ICO")

    error = await rejected("favicon.ico", icon)

    assert error.rule == "type"
    assert "favicon.ico" in error.user_message


async def test_format_outside_narrower_rules_is_refused_and_the_message_lists_the_rules() -> None:
    rules = ReferenceRules(accepted=("image/jpeg", "image/png"))

    error = await rejected("anim.gif", encode(Image.new("RGB", (40, 40)), "GIF"), rules)

    assert error.rule == "type"
    assert error.user_message.endswith("(JPEG or PNG).")


async def test_file_over_ten_megabytes_is_refused_with_its_size() -> None:
    data = jpeg() + b"\0" * int(10.5 * MiB)

    error = await rejected("huge.jpg", data)

    assert error.rule == "bytes"
    assert "huge.jpg" in error.user_message
    assert "10.5 MB" in error.user_message
    assert "at most 10 MB" in error.user_message


async def test_file_just_over_the_limit_does_not_read_as_equal_to_it() -> None:
    error = await rejected("edge.jpg", b"\xff\xd8" + b"\0" * (10 * MiB))

    assert "just over 10 MB" in error.user_message


async def test_side_of_fourteen_pixels_is_too_small() -> None:
    error = await rejected("tiny.png", png(14, 200))

    assert error.rule == "min_side"
    assert "tiny.png" in error.user_message
    assert "14\N{MULTIPLICATION SIGN}200 pixels" in error.user_message
    assert "at least 15 pixels" in error.user_message


async def test_more_than_thirty_six_megapixels_is_refused() -> None:
    error = await rejected("poster.png", png_header_only(7000, 6000))

    assert error.rule == "pixels"
    assert "poster.png" in error.user_message
    assert "7000\N{MULTIPLICATION SIGN}6000 pixels (42 megapixels)" in error.user_message
    assert "at most 36 megapixels" in error.user_message


async def test_pixel_limit_boundary_follows_the_rules() -> None:
    rules = ReferenceRules(max_pixels=10_000)

    assert (await inspect_reference("ok.png", png(100, 100), rules)).width == 100
    assert (await rejected("big.png", png(101, 100), rules)).rule == "pixels"


async def test_decompression_bomb_is_refused_as_too_many_pixels() -> None:
    error = await rejected("bomb.png", png_header_only(40_000, 40_000))

    assert error.rule == "pixels"
    assert "bomb.png" in error.user_message


async def test_too_wide_image_is_refused_with_the_allowed_shape() -> None:
    error = await rejected("banner.png", png(300, 15))

    assert error.rule == "ratio"
    assert "banner.png" in error.user_message
    assert "too wide" in error.user_message
    assert "at most 16 times as wide as it is tall" in error.user_message


async def test_too_tall_image_is_refused() -> None:
    error = await rejected("ribbon.png", png(15, 241))

    assert error.rule == "ratio"
    assert "ribbon.png" in error.user_message
    assert "too tall" in error.user_message


async def test_truncated_image_is_reported_as_damaged() -> None:
    data = jpeg(300, 300)

    error = await rejected("half.jpg", data[: len(data) // 2])

    assert error.rule == "damaged"
    assert "half.jpg" in error.user_message


async def test_filename_is_shown_safely_in_discord_markdown() -> None:
    error = await rejected("my_cat_*draft*.txt", b"hello")

    assert "my\\_cat\\_\\*draft\\*.txt" in error.user_message


async def test_long_filename_is_shortened_and_kept_on_one_line() -> None:
    error = await rejected("line\nbreak" + "x" * 200 + ".txt", b"hello")

    shown = error.user_message.split("\N{RIGHT DOUBLE QUOTATION MARK}")[0]
    assert "\n" not in shown
    assert len(shown) <= 62
    assert shown.endswith("\N{HORIZONTAL ELLIPSIS}")


# --- counts ------------------------------------------------------------------------------


def test_fourteen_references_with_one_output_are_allowed() -> None:
    check_counts(14, 1)
    check_counts(1, 14)


def test_more_than_fourteen_references_are_refused() -> None:
    with pytest.raises(InvalidReference) as caught:
        check_counts(15, 0)

    assert caught.value.rule == "count"
    assert caught.value.user_message == "You attached 15 reference images; at most 14 are allowed."


def test_references_plus_requested_images_above_fifteen_are_refused_with_the_room_left() -> None:
    with pytest.raises(InvalidReference) as caught:
        check_counts(3, 13)

    assert caught.value.rule == "total"
    assert caught.value.user_message == (
        "3 reference images plus 13 requested images is more than the model allows: at most 15 in total, "
        "so with 3 references you can ask for up to 12 images."
    )


def test_singular_counts_read_naturally() -> None:
    with pytest.raises(InvalidReference) as caught:
        check_counts(14, 2, ReferenceRules(max_count=14, max_total_with_outputs=15))

    assert "with 14 references you can ask for up to 1 image." in caught.value.user_message


# --- data URIs ---------------------------------------------------------------------------


async def test_jpeg_png_and_webp_are_sent_unchanged() -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(Image.new("RGB", (20, 20), (1, 2, 3)), fmt)
        ref = await inspect_reference(f"x.{fmt.lower()}", data)

        uri = to_data_uri(ref)

        assert uri == f"data:image/{fmt.lower()};base64,{base64.b64encode(data).decode()}"


def test_data_uri_prefix_is_lowercase_even_if_the_type_is_not() -> None:
    data = png(20, 20)
    ref = ReferenceImage(name="x.png", content=data, content_type="image/PNG", width=20, height=20)

    assert to_data_uri(ref).startswith("data:image/png;base64,")


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
async def test_bmp_and_tiff_are_converted_to_png(fmt: str) -> None:
    ref = await inspect_reference("scan", encode(Image.new("RGB", (30, 20), (9, 99, 199)), fmt))

    prefix, image = decode_data_uri(to_data_uri(ref))

    assert prefix == "data:image/png;base64"
    assert (image.format, image.size) == ("PNG", (30, 20))
    assert image.convert("RGB").getpixel((0, 0)) == (9, 99, 199)


async def test_animated_gif_is_sent_as_its_first_frame() -> None:
    red = Image.new("RGB", (24, 24), (255, 0, 0))
    blue = Image.new("RGB", (24, 24), (0, 0, 255))
    ref = await inspect_reference("anim.gif", encode(red, "GIF", save_all=True, append_images=[blue]))

    prefix, image = decode_data_uri(to_data_uri(ref))

    assert prefix == "data:image/png;base64"
    assert getattr(image, "n_frames", 1) == 1
    assert image.convert("RGB").getpixel((12, 12)) == (255, 0, 0)


async def test_gif_transparency_survives_conversion() -> None:
    gif = Image.new("P", (20, 20), 0)
    gif.putpalette([0, 0, 0] + [0, 255, 0] * 255)
    ref = await inspect_reference("clear.gif", encode(gif, "GIF", transparency=0))

    _, image = decode_data_uri(to_data_uri(ref))

    pixel = image.convert("RGBA").getpixel((5, 5))
    assert isinstance(pixel, tuple) and pixel[3] == 0


async def test_conversion_falls_back_to_jpeg_when_the_png_would_be_too_large() -> None:
    ref = await inspect_reference("noise.bmp", encode(noise_image(200, 200), "BMP"))

    prefix, image = decode_data_uri(to_data_uri(ref, max_bytes=50_000))

    assert prefix == "data:image/jpeg;base64"
    assert image.size == (200, 200)


async def test_encode_references_keeps_the_order() -> None:
    first = await inspect_reference("1.png", png(20, 20))
    second = await inspect_reference("2.jpg", jpeg())

    uris = await encode_references([first, second])

    assert [uri.split(";")[0] for uri in uris] == ["data:image/png", "data:image/jpeg"]
