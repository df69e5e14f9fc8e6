"""What the client puts on the wire, as recorded by the fake relay."""

from __future__ import annotations

import pytest

from bot.core.images.sizes import InvalidSize
from bot.core.relay.errors import InvalidRequest
from bot.core.relay.models import GeneratedImage, GenerationRequest
from tests.fakes.fake_relay import FakeRelay
from tests.seedream.conftest import ClientFactory, collect

NEVER_SENT = ("seed", "guidance_scale", "output_format", "n", "optimize_prompt_options")


async def test_single_image_request_shape(relay: FakeRelay, make_client: ClientFactory) -> None:
    events = await collect(make_client(), GenerationRequest(prompt="a red fox", size="2k"))

    assert [type(event) for event in events] == [GeneratedImage]
    [recorded] = relay.requests
    assert recorded.path == "/v1/images/generations"
    assert recorded.headers["Authorization"] == f"Bearer {relay.api_key}"
    assert recorded.body == {
        "model": relay.model,
        "prompt": "a red fox",
        "size": "2K",
        "response_format": "url",
        "watermark": False,
        "sequential_image_generation": "disabled",
        "stream": True,
    }


async def test_set_request_asks_for_auto_with_max_images(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    events = await collect(make_client(), GenerationRequest(prompt="four seasons", size="2048x2048", count=4))

    body = relay.requests[0].body
    assert body["sequential_image_generation"] == "auto"
    assert body["sequential_image_generation_options"] == {"max_images": 4}
    assert [event.index for event in events] == [0, 1, 2, 3]
    for name in NEVER_SENT:
        assert name not in body


async def test_one_reference_is_a_string_several_are_a_list(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    client = make_client()
    await collect(client, GenerationRequest(prompt="p", size="2K", references=("https://x/1.png",)))
    refs = ("data:image/png;base64,AAAA", "https://x/2.png")
    await collect(client, GenerationRequest(prompt="p", size="2K", references=refs))

    assert relay.requests[0].body["image"] == "https://x/1.png"
    assert relay.requests[1].body["image"] == list(refs)


async def test_watermark_and_user_are_sent_when_set(relay: FakeRelay, make_client: ClientFactory) -> None:
    await collect(make_client(), GenerationRequest(prompt="p", size="1K", watermark=True, user="abc123"))
    await collect(make_client(), GenerationRequest(prompt="p", size="1K"))

    assert relay.requests[0].body["watermark"] is True
    assert relay.requests[0].body["user"] == "abc123"
    assert relay.requests[1].body["watermark"] is False
    assert "user" not in relay.requests[1].body


async def test_without_streaming_no_stream_field_and_b64_format(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    await collect(make_client(stream=False, response_format="b64_json"), GenerationRequest("p", "4096x4096"))

    body = relay.requests[0].body
    assert "stream" not in body
    assert body["response_format"] == "b64_json"
    assert body["size"] == "4096x4096"


async def test_result_downloads_never_carry_the_api_key(relay: FakeRelay, make_client: ClientFactory) -> None:
    await collect(make_client(), GenerationRequest("p", "2K", count=2))

    assert len(relay.asset_requests) == 2
    for recorded in relay.asset_requests:
        assert "Authorization" not in recorded.headers
        assert relay.api_key not in str(recorded.headers)


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest("   ", "2K"),
        GenerationRequest("p", "2K", count=0),
        GenerationRequest("p", "2K", count=15, references=("https://x/1.png",)),
    ],
)
async def test_impossible_requests_fail_before_reaching_the_relay(
    relay: FakeRelay, make_client: ClientFactory, request_: GenerationRequest
) -> None:
    with pytest.raises(InvalidRequest):
        await collect(make_client(), request_)
    assert relay.requests == []


async def test_invalid_size_is_rejected_locally(relay: FakeRelay, make_client: ClientFactory) -> None:
    with pytest.raises(InvalidSize):
        make_client().build_payload(GenerationRequest("p", "800x800"))
    assert make_client().build_payload(GenerationRequest("p", "1600 x 600"))["size"] == "1600x600"
