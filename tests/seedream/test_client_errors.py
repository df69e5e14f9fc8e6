"""Relay failures reach the caller as typed errors; transient ones are retried within bounds."""

from __future__ import annotations

import io
import os
import time
import traceback

import pytest
from PIL import Image

from bot.core.relay.client import RelayConnectionError
from bot.core.relay.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    RelayTimeout,
    SeedreamError,
    ServerError,
)
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageFailure
from tests.fakes.fake_relay import FakeRelay, ark_error, new_api_error
from tests.seedream.conftest import ClientFactory, collect

REQUEST = GenerationRequest("a lighthouse", "2K")
IPM = "ModelAccountIpmRateLimitExceeded"


async def test_invalid_parameter_is_not_retried_and_reads_well(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.fail_next(
        400,
        ark_error(
            "InvalidParameter",
            "The parameter `size` specified in the request is not valid: image size must be at least "
            "3686400 pixels.",
            param="size",
        ),
    )

    with pytest.raises(InvalidRequest) as caught:
        await collect(make_client(), REQUEST)

    assert len(relay.requests) == 1
    assert caught.value.status == 400 and caught.value.code == "InvalidParameter"
    message = caught.value.user_message
    assert "3686400 pixels" in message and "`size`" in message
    assert "request id" not in message.lower()


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("InputTextSensitiveContentDetected", "input_text"),
        ("InputImageSensitiveContentDetected", "input_image"),
        ("OutputImageSensitiveContentDetected", "output_image"),
    ],
)
async def test_moderation_blocks_are_typed_and_never_retried(
    relay: FakeRelay, make_client: ClientFactory, code: str, kind: str
) -> None:
    relay.fail_next(400, ark_error(code, "The request failed because it may contain sensitive information."))

    with pytest.raises(ContentBlocked) as caught:
        await collect(make_client(), REQUEST)

    assert caught.value.kind == kind
    assert len(relay.requests) == 1


async def test_wrong_key_is_authentication_failed(relay: FakeRelay, make_client: ClientFactory) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await collect(make_client(api_key="sk-wrong-key-000000"), REQUEST)

    assert caught.value.status == 401
    assert len(relay.requests) == 1


async def test_429_with_retry_after_waits_then_succeeds(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.fail_next(429, ark_error(IPM, "IPM limit of the model is exceeded."), {"Retry-After": "1"})
    started = time.monotonic()

    events = await collect(make_client(backoff_base=0.001), REQUEST)

    elapsed = time.monotonic() - started
    assert [type(event) for event in events] == [GeneratedImage]
    assert len(relay.requests) == 2
    assert elapsed >= 1.0


async def test_429_exhausts_the_retries(relay: FakeRelay, make_client: ClientFactory) -> None:
    for _ in range(3):
        relay.fail_next(429, ark_error(IPM))

    with pytest.raises(RateLimited):
        await collect(make_client(max_retries=2), REQUEST)

    assert len(relay.requests) == 3


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.fail_next(429, ark_error(IPM), {"Retry-After": "60"})
    started = time.monotonic()

    with pytest.raises(RateLimited) as caught:
        await collect(make_client(retry_budget=5.0), REQUEST)

    assert caught.value.retry_after == 60.0
    assert len(relay.requests) == 1
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, ark_error("QuotaExceeded")),
        (429, ark_error("SetLimitExceeded")),
        (403, new_api_error("user quota is not enough", "insufficient_user_quota")),
    ],
)
async def test_quota_exhaustion_is_not_retried(
    relay: FakeRelay, make_client: ClientFactory, status: int, body: dict[str, object]
) -> None:
    relay.fail_next(status, body)

    with pytest.raises(QuotaExhausted):
        await collect(make_client(), REQUEST)

    assert len(relay.requests) == 1


async def test_500_is_retried_then_succeeds(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.fail_next(500, ark_error("InternalServiceError"))
    relay.fail_next(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"})

    events = await collect(make_client(), REQUEST)

    assert [type(event) for event in events] == [GeneratedImage]
    assert len(relay.requests) == 3


async def test_dropped_connection_is_retried(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.drop_connection_next()

    events = await collect(make_client(), REQUEST)

    assert [type(event) for event in events] == [GeneratedImage]
    assert len(relay.requests) == 2


async def test_retries_are_bounded_in_count(relay: FakeRelay, make_client: ClientFactory) -> None:
    for _ in range(10):
        relay.fail_next(500, ark_error("InternalServiceError"))

    with pytest.raises(ServerError):
        await collect(make_client(max_retries=2), REQUEST)

    assert len(relay.requests) == 3


async def test_retries_are_bounded_in_total_time(relay: FakeRelay, make_client: ClientFactory) -> None:
    for _ in range(20):
        relay.fail_next(503, ark_error("ServerOverloaded"))
    started = time.monotonic()

    with pytest.raises(ServerError):
        await collect(make_client(max_retries=10, backoff_base=0.2, retry_budget=0.5), REQUEST)

    elapsed = time.monotonic() - started
    assert elapsed < 0.8
    assert 2 <= len(relay.requests) <= 3


async def test_a_slow_relay_times_out_without_retry(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.latency = 2.0
    started = time.monotonic()

    with pytest.raises(RelayTimeout):
        await collect(make_client(timeout=0.4), REQUEST)

    assert time.monotonic() - started < 1.5
    assert len(relay.requests) == 1


async def test_timeout_after_an_image_ends_the_set_with_a_failure(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    relay.per_image_delay = 0.5

    events = await collect(make_client(timeout=0.8), GenerationRequest("p", "2K", count=3))

    assert [(type(e), e.index) for e in events] == [(GeneratedImage, 0), (ImageFailure, 1)]
    assert isinstance(events[1], ImageFailure) and isinstance(events[1].error, RelayTimeout)
    assert len(relay.requests) == 1


async def test_connection_lost_mid_set_is_not_retried(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.drop_connection_next(after_images=2)

    events = await collect(make_client(), GenerationRequest("p", "2K", count=4))

    assert [(type(e), e.index) for e in events] == [
        (GeneratedImage, 0),
        (GeneratedImage, 1),
        (ImageFailure, 2),
    ]
    assert isinstance(events[2], ImageFailure) and isinstance(events[2].error, RelayConnectionError)
    assert len(relay.requests) == 1


def tiny_jpeg(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (index, 9, 9)).save(buffer, "JPEG")
    return buffer.getvalue()


def noise_jpeg(index: int, size: str) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize(("response_format", "chunked"), [("url", False), ("url", True), ("b64_json", False)])
async def test_images_over_the_download_cap_fail_alone(
    relay: FakeRelay, make_client: ClientFactory, response_format: str, chunked: bool
) -> None:
    relay.image_factory = lambda index, size: noise_jpeg(index, size) if index == 0 else tiny_jpeg(index)
    relay.chunked_assets = chunked
    client = make_client(response_format=response_format, max_download_bytes=50_000)

    events = await collect(client, GenerationRequest("p", "2K", count=2))

    assert len(relay.served_images[0]) > 50_000
    assert isinstance(events[0], ImageFailure)
    assert isinstance(events[0].error, MalformedResponse)
    assert "larger than" in events[0].error.user_message
    assert isinstance(events[1], GeneratedImage)
    assert events[1].content == relay.served_images[1]


def assert_key_absent(key: str, error: BaseException) -> None:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, SeedreamError):
        texts += [error.user_message, str(error.code)]
    for text in texts:
        assert key not in text
        assert key[-12:] not in text


@pytest.mark.parametrize(
    ("status", "headers"),
    [(400, None), (401, None), (403, None), (429, {"Retry-After": "0"}), (500, None), (200, None)],
)
async def test_api_key_never_appears_in_errors_even_when_echoed(
    relay: FakeRelay, make_client: ClientFactory, status: int, headers: dict[str, str] | None
) -> None:
    key = relay.api_key
    echoed = {"error": {"code": f"bad {key}", "message": f"Header was 'Authorization: Bearer {key}' ({key})"}}
    for _ in range(3):
        relay.fail_next(status, echoed, headers)
    client = make_client(max_retries=2)

    with pytest.raises(SeedreamError) as caught:
        await collect(client, REQUEST)

    assert_key_absent(key, caught.value)
    assert key not in repr(client)


async def test_api_key_never_appears_in_per_image_failures(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    key = relay.api_key
    relay.image_errors = {0: f"Leaky{key}"}

    [event] = await collect(make_client(stream=False), REQUEST)

    assert isinstance(event, ImageFailure)
    assert_key_absent(key, event.error)
    assert key not in repr(event)


async def test_api_key_never_appears_in_plain_text_errors(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    key = relay.api_key
    relay.fail_next(400, f"invalid key {key}")

    with pytest.raises(InvalidRequest) as caught:
        await collect(make_client(), REQUEST)

    assert_key_absent(key, caught.value)
