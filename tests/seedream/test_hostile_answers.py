"""What the relay sends is bounded and checked: frame and body caps, indices, error texts (issue 12)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from bot.core.relay.errors import MalformedResponse, SeedreamError
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageFailure
from bot.core.relay.sse import FrameTooLarge, SSEParser
from tests.fakes.fake_relay import FakeRelay, sized_jpeg
from tests.seedream.conftest import ClientFactory, collect

MAX_BYTES = 64 * 1024  # a small per-image cap keeps the oversized answers small too


def b64(index: int) -> str:
    return base64.b64encode(sized_jpeg(index, "32x32")).decode()


def succeeded(index: object, data: str) -> str:
    value = {"type": "image_generation.partial_succeeded", "image_index": index, "b64_json": data, "size": "32x32"}
    return f"event: image_generation.partial_succeeded\ndata: {json.dumps(value)}\n\n"


# --- caps ----------------------------------------------------------------------------------


def test_the_parser_refuses_a_frame_as_soon_as_it_passes_the_cap() -> None:
    parser = SSEParser(max_frame=10_000)
    parser.feed(b"data: " + b"A" * 6000)  # under the cap: held
    with pytest.raises(FrameTooLarge):
        parser.feed(b"A" * 6000)  # passes it in the middle of a line, long before its end


def test_the_cap_counts_every_data_line_of_a_frame() -> None:
    parser = SSEParser(max_frame=10_000)
    with pytest.raises(FrameTooLarge):
        parser.feed(b"data: " + b"A" * 4000 + b"\ndata: " + b"B" * 4000 + b"\ndata: " + b"C" * 4000 + b"\n")


def test_many_frames_each_under_the_cap_are_fine() -> None:
    parser = SSEParser(max_frame=10_000)
    events = parser.feed(b"".join(b"data: " + b"A" * 9000 + b"\n\n" for _ in range(20)))

    assert len(events) == 20


async def test_an_oversized_stream_frame_is_refused_with_a_clear_error(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    huge = "A" * (MAX_BYTES * 4)
    relay.respond_next_raw([f"data: {json.dumps({'type': 'image_generation.partial_succeeded', 'b64_json': huge})}"])

    with pytest.raises(MalformedResponse) as caught:
        await collect(make_client(max_download_bytes=MAX_BYTES), GenerationRequest("p", "2K"))

    assert "stream event larger than the bot accepts" in caught.value.user_message


async def test_an_oversized_frame_after_an_image_ends_the_set_with_a_failure(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.respond_next_raw([succeeded(0, b64(0)), "data: " + "A" * (MAX_BYTES * 4), "\n\n"])

    events = await collect(make_client(max_download_bytes=MAX_BYTES), GenerationRequest("p", "2K", count=2))

    assert isinstance(events[0], GeneratedImage)
    assert isinstance(events[1], ImageFailure) and "larger than the bot accepts" in events[1].error.user_message


async def test_an_oversized_json_body_is_refused_with_a_clear_error(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    client = make_client(max_download_bytes=MAX_BYTES, stream=False)
    chunk = "A" * 65536
    # Two images asked for: the body may hold two frames' worth, and this one is far bigger.
    relay.respond_next_raw(['{"data": [{"b64_json": "', *[chunk] * 40, '"}]}'], content_type="application/json")

    with pytest.raises(MalformedResponse) as caught:
        await collect(client, GenerationRequest("p", "2K", count=2))

    assert "response larger than the bot accepts" in caught.value.user_message


# --- indices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ([0, 0], [0, 1]),  # duplicated
        ([150, 1], [0, 1]),  # out of range: the first free index
        ([1, 1, 0], [1, 0, 2]),
        ([None, 0], [0, 1]),  # missing, then a duplicate of what arrival gave it
        ([-3, True, "2"], [0, 1, 2]),
    ],
)
async def test_relay_indices_are_replaced_by_arrival_when_not_trustworthy(
    relay: FakeRelay, make_client: ClientFactory, reported: list[object], expected: list[int]
) -> None:
    relay.respond_next_raw([succeeded(index, b64(n)) for n, index in enumerate(reported)] + ["data: [DONE]\n\n"])

    events = await collect(make_client(), GenerationRequest("p", "2K", count=len(reported)))

    assert [event.index for event in events] == expected


async def test_images_beyond_the_request_are_not_delivered(
    relay: FakeRelay, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    relay.respond_next_raw([succeeded(0, b64(0)), succeeded(1, b64(1)), succeeded(150, b64(2))])

    with caplog.at_level(logging.WARNING):
        events = await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert [event.index for event in events] == [0, 1]
    assert "more images than the 2 asked for" in caplog.text


# --- error texts ---------------------------------------------------------------------------

REFERENCE = "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 40).decode()


@pytest.mark.parametrize(
    "message",
    [
        f"invalid request body: {{\"image\": [\"{REFERENCE}\"], \"prompt\": \"cat\"}}",
        "bad image " + base64.b64encode(bytes(range(256)) * 4).decode(),
        "upstream said: api_key=AKIAABCDEFGHIJKLMNOP secret: hunter2 Bearer abc.def",
        "token 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8' refused",
    ],
)
async def test_relay_error_texts_lose_data_uris_base64_and_keys(
    relay: FakeRelay, make_client: ClientFactory, caplog: pytest.LogCaptureFixture, message: str
) -> None:
    relay.fail_next(400, {"error": {"code": "InvalidParameter", "message": message, "type": "invalid_request_error"}})

    with caplog.at_level(logging.DEBUG), pytest.raises(SeedreamError) as caught:
        await collect(make_client(), GenerationRequest("p", "2K"))

    shown = f"{caught.value.user_message} {caught.value} {caught.value.code}"
    for leaked in ("base64,", "AAECAwQF", "AKIAABCDEFGH", "hunter2", "abc.def", "a1b2c3d4e5f6"):
        assert leaked not in shown
        assert leaked not in caplog.text
    assert caught.value.user_message.startswith("The image service")
