"""Images come back as bytes, one event per image, whatever shape the relay answers in."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Mapping

import pytest
from PIL import Image

from bot.core.images.sniff import sniff_content_type
from bot.core.relay.errors import ContentBlocked, MalformedResponse, ServerError
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageFailure
from tests.fakes.fake_relay import FakeRelay, ark_error, large_jpeg, large_jpeg_factory, sized_jpeg
from tests.seedream.conftest import ClientFactory, collect

SET_OF_THREE = GenerationRequest("three cats", "2K", count=3)


def frame(event: str | None, data: Mapping[str, object] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n"


def succeeded(index: int, b64: str, size: str = "32x32") -> str:
    data = {"type": "image_generation.partial_succeeded", "image_index": index, "b64_json": b64, "size": size}
    return frame("image_generation.partial_succeeded", data)


def b64_of(content: bytes) -> str:
    import base64

    return base64.b64encode(content).decode()


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_images_are_byte_identical_to_what_the_relay_served(
    relay: FakeRelay, make_client: ClientFactory, stream: bool, response_format: str
) -> None:
    client = make_client(stream=stream, response_format=response_format)

    events = await collect(client, SET_OF_THREE)

    assert all(isinstance(event, GeneratedImage) for event in events)
    assert [event.content for event in events if isinstance(event, GeneratedImage)] == relay.served_images
    assert len(set(relay.served_images)) == 3
    assert all(event.size == "32x32" and event.content_type == "image/jpeg" for event in events)  # type: ignore[union-attr]


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_4k_image_over_10_mib_arrives_whole(
    relay: FakeRelay, make_client: ClientFactory, response_format: str
) -> None:
    big = await asyncio.to_thread(large_jpeg)
    assert len(big) > 10 * 2**20
    relay.image_factory = large_jpeg_factory

    [event] = await collect(make_client(response_format=response_format), GenerationRequest("noise", "4K"))

    assert isinstance(event, GeneratedImage)
    assert event.content == big
    assert event.size == "4096x4096"


async def test_sized_images_report_their_real_dimensions(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.image_factory = sized_jpeg

    [event] = await collect(make_client(), GenerationRequest("wide", "1600x600"))

    assert isinstance(event, GeneratedImage)
    assert event.size == "1600x600"
    with Image.open(io.BytesIO(event.content)) as image:
        assert image.size == (1600, 600)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_blocked_image_does_not_sink_the_rest_of_the_set(
    relay: FakeRelay, make_client: ClientFactory, stream: bool
) -> None:
    relay.image_errors = {1: "OutputImageSensitiveContentDetected"}

    events = await collect(make_client(stream=stream), SET_OF_THREE)

    assert [(type(event), event.index) for event in events] == [
        (GeneratedImage, 0),
        (ImageFailure, 1),
        (GeneratedImage, 2),
    ]
    failure = events[1]
    assert isinstance(failure, ImageFailure)
    assert isinstance(failure.error, ContentBlocked)
    assert failure.error.kind == "output_image"


async def test_a_relay_making_fewer_images_than_asked_is_fine(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.produce = 2

    events = await collect(make_client(), GenerationRequest("p", "2K", count=5))

    assert [event.index for event in events] == [0, 1]
    assert all(isinstance(event, GeneratedImage) for event in events)


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
async def test_json_answer_to_a_stream_request_is_understood(
    relay: FakeRelay, make_client: ClientFactory, response_format: str
) -> None:
    relay.json_to_stream = True

    events = await collect(make_client(stream=True, response_format=response_format), SET_OF_THREE)

    assert relay.requests[0].body["stream"] is True
    assert [event.content for event in events if isinstance(event, GeneratedImage)] == relay.served_images


async def test_relay_sending_one_completed_event_per_image(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.stream_style = "completed_per_image"

    events = await collect(make_client(), SET_OF_THREE)

    assert [event.index for event in events] == [0, 1, 2]
    assert [event.content for event in events if isinstance(event, GeneratedImage)] == relay.served_images


async def test_images_are_yielded_as_they_finish(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.per_image_delay = 0.3
    started = time.monotonic()
    arrivals = []

    async for _event in make_client().generate(SET_OF_THREE):
        arrivals.append(time.monotonic() - started)

    assert arrivals[0] < 0.6  # the first image did not wait for the whole set (~0.9 s)
    assert arrivals[-1] >= 0.85


async def test_sse_multi_line_data_previews_and_done(relay: FakeRelay, make_client: ClientFactory) -> None:
    first, second = sized_jpeg(1, "64x64"), sized_jpeg(2, "64x64")
    split = json.dumps(
        {"type": "image_generation.partial_succeeded", "image_index": 1, "b64_json": b64_of(second)}
    )
    half = split.index(", ") + 1  # break between JSON tokens, as a relay would
    relay.respond_next_raw(
        [
            ": comment\n\n",
            frame(
                "image_generation.partial_image", {"partial_image_index": 0, "b64_json": b64_of(b"preview")}
            ),
            succeeded(0, b64_of(first)),
            # one frame, two data lines, split across writes
            f"event: image_generation.partial_succeeded\ndata: {split[:half]}\n",
            f"data: {split[half:]}\n\n",
            frame("image_generation.completed", {"usage": {"generated_images": 2}}),
            "data: [DONE]\n\n",
            succeeded(2, b64_of(first)),  # anything after [DONE] is ignored
        ],
        chunk_delay=0.01,
    )

    events = await collect(make_client(response_format="b64_json"), GenerationRequest("p", "2K", count=2))

    assert [(type(e), e.index) for e in events] == [(GeneratedImage, 0), (GeneratedImage, 1)]
    assert [e.content for e in events if isinstance(e, GeneratedImage)] == [first, second]


async def test_partial_failed_carries_an_error_but_is_not_fatal(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    image = sized_jpeg(0, "64x64")
    failed = {
        "type": "image_generation.partial_failed",
        "image_index": 0,
        "error": {"code": "OutputImageSensitiveContentDetected", "message": "sensitive"},
    }
    relay.respond_next_raw(
        [frame("image_generation.partial_failed", failed), succeeded(1, b64_of(image)), "data: [DONE]\n\n"]
    )

    events = await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert [(type(e), e.index) for e in events] == [(ImageFailure, 0), (GeneratedImage, 1)]


async def test_event_less_error_before_any_image_raises_the_typed_error(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.respond_next_raw([frame(None, ark_error("InputTextSensitiveContentDetected")), "data: [DONE]\n\n"])

    with pytest.raises(ContentBlocked) as caught:
        await collect(make_client(), GenerationRequest("p", "2K"))
    assert caught.value.kind == "input_text"
    assert len(relay.requests) == 1


async def test_error_event_after_an_image_ends_the_set_with_a_failure(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    image = sized_jpeg(0, "64x64")
    relay.respond_next_raw(
        [
            succeeded(0, b64_of(image)),
            frame("error", ark_error("InternalServiceError")),
            succeeded(1, b64_of(image)),
        ]
    )

    events = await collect(make_client(), GenerationRequest("p", "2K", count=3))

    assert [(type(e), e.index) for e in events] == [(GeneratedImage, 0), (ImageFailure, 1)]
    assert isinstance(events[1], ImageFailure) and isinstance(events[1].error, ServerError)
    assert len(relay.requests) == 1  # never retried once an image was delivered


async def test_json_body_with_a_wrong_content_type_is_sniffed(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    image = sized_jpeg(0, "64x64")
    body = json.dumps({"created": 1, "data": [{"b64_json": b64_of(image), "size": "64\u00d764"}]})
    relay.respond_next_raw(["\n  ", body], content_type="text/plain")

    [event] = await collect(make_client(), GenerationRequest("p", "2K"))

    assert isinstance(event, GeneratedImage)
    assert event.content == image
    assert event.size == "64x64"


async def test_ok_answer_with_only_a_top_level_error_is_a_failure(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.fail_next(200, ark_error("InputImageSensitiveContentDetected"))

    with pytest.raises(ContentBlocked) as caught:
        await collect(make_client(stream=False), GenerationRequest("p", "2K"))
    assert caught.value.kind == "input_image"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"data": []}', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ("garbage without frames", "text/plain"),
        ('event: image_generation.completed\ndata: {"usage": {}}\n\ndata: [DONE]\n\n', "text/event-stream"),
    ],
)
async def test_unreadable_or_empty_answers_are_malformed(
    relay: FakeRelay, make_client: ClientFactory, body: str, content_type: str
) -> None:
    relay.respond_next_raw([body], content_type=content_type)

    with pytest.raises(MalformedResponse):
        await collect(make_client(), GenerationRequest("p", "2K"))
    assert len(relay.requests) == 1


async def test_bytes_that_are_not_an_image_fail_that_image_only(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.image_factory = lambda index, size: (
        b"<html>oops</html>" if index == 0 else sized_jpeg(index, "64x64")
    )

    events = await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert isinstance(events[0], ImageFailure) and isinstance(events[0].error, MalformedResponse)
    assert isinstance(events[1], GeneratedImage)


def png_factory(index: int, size: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (index, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def webp_factory(index: int, size: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (index, 0, 0)).save(buffer, "WEBP")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("factory", "expected"),
    [(png_factory, "image/png"), (webp_factory, "image/webp"), (sized_jpeg, "image/jpeg")],
)
async def test_content_type_comes_from_the_bytes(
    relay: FakeRelay, make_client: ClientFactory, factory: object, expected: str
) -> None:
    relay.image_factory = factory  # type: ignore[assignment]

    [event] = await collect(make_client(), GenerationRequest("p", "1280x720"))

    assert isinstance(event, GeneratedImage)
    assert event.content_type == expected
    assert sniff_content_type(event.content) == expected


async def test_frames_labelled_message_are_read_by_their_type(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    image = sized_jpeg(0, "64x64")
    data = {"type": "image_generation.partial_succeeded", "image_index": 0, "b64_json": b64_of(image)}
    relay.respond_next_raw(
        [frame("message", data), frame(None, data | {"image_index": 1}), "data: [DONE]\n\n"]
    )

    events = await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert [(type(e), e.index) for e in events] == [(GeneratedImage, 0), (GeneratedImage, 1)]


async def test_final_completed_event_carrying_a_data_list(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    first, second = sized_jpeg(3, "64x64"), sized_jpeg(4, "64x64")
    completed = {
        "type": "image_generation.completed",
        "data": [{"b64_json": b64_of(first)}, {"b64_json": b64_of(second)}],
        "usage": {"generated_images": 2},
    }
    relay.respond_next_raw([frame("image_generation.completed", completed), "data: [DONE]\n\n"])

    events = await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert [e.content for e in events if isinstance(e, GeneratedImage)] == [first, second]


async def test_stopping_early_closes_the_stream_and_the_client_stays_usable(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.per_image_delay = 0.05
    client = make_client()
    generator = client.generate(GenerationRequest("p", "2K", count=5))

    first = await anext(generator)
    await generator.aclose()

    assert first.index == 0
    relay.per_image_delay = 0
    events = await collect(client, GenerationRequest("p", "2K"))
    assert [type(e) for e in events] == [GeneratedImage]


async def test_cancelling_a_generation_mid_stream_leaves_no_task_behind(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.per_image_delay = 0.2
    task = asyncio.create_task(collect(make_client(), GenerationRequest("p", "2K", count=5)))
    await asyncio.sleep(0.3)
    assert any("pump" in repr(t) for t in asyncio.all_tasks())  # the stream reader is running
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "pump" in repr(t)]
    assert others == []
