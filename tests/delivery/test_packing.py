"""fit_images: what Discord receives for a job's images."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.images.packing import (
    DEFAULT_SAFETY_MARGIN,
    PART_OVERHEAD,
    ImageTooLarge,
    OutgoingFile,
    UnreadableImage,
    fit_images,
)
from bot.core.relay.models import GeneratedImage
from tests.delivery import encode, noise_image, png_header_only

MiB = 2**20
DISCORD_DEFAULT_LIMIT = 10 * MiB


@pytest.fixture(scope="module")
def big_4k_jpeg() -> bytes:
    """A 4096x4096 noise JPEG at quality 95: about 18 MiB, far above the 10 MiB default limit."""
    data = encode(noise_image(4096, 4096), "JPEG", quality=95)
    assert len(data) > DISCORD_DEFAULT_LIMIT
    return data


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    return encode(noise_image(64, 48), "JPEG", quality=90)


def decoded(file: OutgoingFile) -> Image.Image:
    image = Image.open(io.BytesIO(file.content))
    image.load()
    return image


def flat(messages: list[list[OutgoingFile]]) -> list[OutgoingFile]:
    return [file for message in messages for file in message]


async def test_image_under_the_limit_is_sent_byte_identical(small_jpeg: bytes) -> None:
    images = [GeneratedImage(index=0, content=small_jpeg)]

    messages = await fit_images(images, job_id="j42", file_limit=DISCORD_DEFAULT_LIMIT)

    assert len(messages) == 1
    [file] = messages[0]
    assert file.content == small_jpeg
    assert file.reencoded is False
    assert file.filename == "seedream-j42-1.jpg"
    assert file.content_type == "image/jpeg"
    assert file.index == 0


async def test_png_under_the_limit_keeps_its_type_whatever_was_declared() -> None:
    png = encode(noise_image(32, 32), "PNG")
    images = [GeneratedImage(index=2, content=png, content_type="image/jpeg")]

    [[file]] = await fit_images(images, job_id="job", file_limit=DISCORD_DEFAULT_LIMIT)

    assert file.content == png
    assert (file.filename, file.content_type) == ("seedream-job-3.png", "image/png")


async def test_fifteen_images_arrive_in_two_messages_of_ten_and_five_in_order(small_jpeg: bytes) -> None:
    images = [GeneratedImage(index=i, content=small_jpeg) for i in range(15)]

    messages = await fit_images(images, job_id="set", file_limit=DISCORD_DEFAULT_LIMIT)

    assert [len(message) for message in messages] == [10, 5]
    assert [file.index for file in flat(messages)] == list(range(15))
    assert [file.filename for file in flat(messages)] == [f"seedream-set-{i}.jpg" for i in range(1, 16)]


async def test_fewer_files_per_message_when_asked(small_jpeg: bytes) -> None:
    images = [GeneratedImage(index=i, content=small_jpeg) for i in range(7)]

    messages = await fit_images(images, job_id="j", file_limit=DISCORD_DEFAULT_LIMIT, max_files_per_message=3)

    assert [[file.index for file in message] for message in messages] == [[0, 1, 2], [3, 4, 5], [6]]


async def test_more_than_ten_files_per_message_is_refused(small_jpeg: bytes) -> None:
    with pytest.raises(ValueError, match="max_files_per_message"):
        await fit_images(
            [GeneratedImage(index=0, content=small_jpeg)],
            job_id="j",
            file_limit=DISCORD_DEFAULT_LIMIT,
            max_files_per_message=11,
        )


async def test_oversized_4k_jpeg_is_reencoded_under_the_limit_as_a_valid_jpeg(big_4k_jpeg: bytes) -> None:
    images = [GeneratedImage(index=0, content=big_4k_jpeg)]

    [[file]] = await fit_images(images, job_id="big", file_limit=DISCORD_DEFAULT_LIMIT)

    assert file.reencoded is True
    assert len(file.content) <= DISCORD_DEFAULT_LIMIT - DEFAULT_SAFETY_MARGIN
    assert (file.filename, file.content_type) == ("seedream-big-1.jpg", "image/jpeg")
    image = decoded(file)
    assert image.format == "JPEG"
    assert image.width / image.height == pytest.approx(1.0, rel=0.01)


async def test_only_the_oversized_image_is_reencoded_and_order_is_kept(
    big_4k_jpeg: bytes, small_jpeg: bytes
) -> None:
    images = [
        GeneratedImage(index=0, content=small_jpeg),
        GeneratedImage(index=1, content=big_4k_jpeg),
        GeneratedImage(index=2, content=small_jpeg),
    ]

    files = flat(await fit_images(images, job_id="mix", file_limit=DISCORD_DEFAULT_LIMIT))

    assert [file.index for file in files] == [0, 1, 2]
    assert [file.reencoded for file in files] == [False, True, False]
    assert files[0].content == small_jpeg and files[2].content == small_jpeg


async def test_downscaled_image_keeps_its_aspect_ratio() -> None:
    wide = encode(noise_image(2100, 900, seed=1), "JPEG", quality=95)
    limit = DEFAULT_SAFETY_MARGIN + 200 * 1024
    assert len(wide) > limit

    [[file]] = await fit_images([GeneratedImage(index=0, content=wide)], job_id="w", file_limit=limit)

    image = decoded(file)
    assert len(file.content) <= limit - DEFAULT_SAFETY_MARGIN
    assert image.width < 2100
    assert image.width / image.height == pytest.approx(2100 / 900, rel=0.01)


async def test_request_budget_splits_messages_before_the_file_count_does() -> None:
    payloads = [encode(noise_image(300, 300, seed=i), "JPEG", quality=90) for i in range(3)]
    images = [GeneratedImage(index=i, content=data) for i, data in enumerate(payloads)]
    two_files = sum(len(data) + PART_OVERHEAD for data in payloads[:2])
    budget = DEFAULT_SAFETY_MARGIN + two_files + 100  # room for two files, not three

    messages = await fit_images(images, job_id="b", file_limit=DISCORD_DEFAULT_LIMIT, request_budget=budget)

    assert [[file.index for file in message] for message in messages] == [[0, 1], [2]]
    assert not any(file.reencoded for file in flat(messages))


async def test_every_message_stays_within_the_request_budget() -> None:
    """Four images of ~7 MiB each under a 50 MiB file limit: the 25 MiB request budget decides."""
    seven_mib = encode(noise_image(2800, 2800, seed=3), "JPEG", quality=92)
    images = [GeneratedImage(index=i, content=seven_mib) for i in range(4)]

    messages = await fit_images(images, job_id="t2", file_limit=50 * MiB)

    for message in messages:
        assert sum(len(file.content) + PART_OVERHEAD for file in message) <= 25 * MiB - DEFAULT_SAFETY_MARGIN
    assert [file.index for file in flat(messages)] == [0, 1, 2, 3]
    assert 6 * MiB < len(seven_mib) < 8 * MiB
    assert [len(message) for message in messages] == [3, 1]


async def test_file_within_the_guild_limit_but_above_the_request_budget_is_shrunk(big_4k_jpeg: bytes) -> None:
    images = [GeneratedImage(index=0, content=big_4k_jpeg)]

    [[file]] = await fit_images(images, job_id="t3", file_limit=100 * MiB, request_budget=8 * MiB)

    assert file.reencoded is True
    assert len(file.content) + PART_OVERHEAD <= 8 * MiB - DEFAULT_SAFETY_MARGIN


async def test_png_with_alpha_is_converted_to_jpeg_on_white() -> None:
    rgba = noise_image(600, 400, mode="RGBA", seed=5)
    rgba.paste((10, 200, 30, 255), (0, 0, 300, 400))  # left half green, then made fully transparent
    alpha = Image.new("L", (600, 400), 255)
    alpha.paste(0, (0, 0, 300, 400))
    rgba.putalpha(alpha)
    png = encode(rgba, "PNG")
    limit = DEFAULT_SAFETY_MARGIN + len(png) // 2

    [[file]] = await fit_images(
        [GeneratedImage(index=0, content=png, content_type="image/png")], job_id="a", file_limit=limit
    )

    image = decoded(file)
    assert file.reencoded and file.filename == "seedream-a-1.jpg"
    assert (image.format, image.mode) == ("JPEG", "RGB")
    left = image.crop((0, 0, image.width // 2 - 8, image.height))
    assert min(left.tobytes()) >= 240  # every channel near white, not green


async def test_image_that_cannot_fit_even_tiny_raises_and_names_it(big_4k_jpeg: bytes) -> None:
    one_pixel_png = encode(Image.new("RGB", (1, 1)), "PNG")
    assert len(one_pixel_png) < 100
    images = [GeneratedImage(index=0, content=one_pixel_png), GeneratedImage(index=1, content=big_4k_jpeg)]
    limit = DEFAULT_SAFETY_MARGIN + 100  # no JPEG of 16 px or more is that small

    with pytest.raises(ImageTooLarge) as caught:
        await fit_images(images, job_id="x", file_limit=limit)

    assert caught.value.index == 1
    assert "Image 2" in caught.value.user_message


async def test_oversized_bytes_that_are_not_an_image_raise_unreadable() -> None:
    garbage = b"not an image" * 2000

    with pytest.raises(UnreadableImage) as caught:
        await fit_images(
            [GeneratedImage(index=4, content=garbage)], job_id="g", file_limit=1000, safety_margin=0
        )

    assert caught.value.index == 4
    assert "Image 5" in caught.value.user_message


async def test_decompression_bomb_is_refused_without_decoding() -> None:
    bomb = png_header_only(40_000, 40_000) + b"\0" * 5000

    with pytest.raises(UnreadableImage):
        await fit_images(
            [GeneratedImage(index=0, content=bomb)], job_id="b", file_limit=1000, safety_margin=0
        )


async def test_limits_that_leave_no_room_are_a_programming_error(small_jpeg: bytes) -> None:
    with pytest.raises(ValueError, match="no room"):
        await fit_images([GeneratedImage(index=0, content=small_jpeg)], job_id="z", file_limit=1024)


async def test_no_images_means_no_messages() -> None:
    assert await fit_images([], job_id="e", file_limit=DISCORD_DEFAULT_LIMIT) == []
