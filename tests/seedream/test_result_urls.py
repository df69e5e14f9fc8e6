"""Result URLs come from the relay, so they are checked before anything is fetched (issue 12).

The fake relay runs on 127.0.0.1, which is the relay's own origin and so allowed; a hostile
URL points at a loopback listener on another port, which proves by its empty hit list that
nothing was fetched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.core.relay.client import SeedreamClient
from bot.core.relay.errors import MalformedResponse
from bot.core.relay.fetch import DamagedImage
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageFailure
from bot.core.relay.urls import RefusedResultUrl, parse_hosts
from tests.fakes.fake_relay import FakeRelay, sized_jpeg
from tests.seedream.conftest import ClientFactory, collect
from tests.seedream.hostile import Listener, MapResolver

SET_OF_THREE = GenerationRequest("three cats", "2K", count=3)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with Listener() as server:
        yield server


def only_second(url: str) -> object:
    """A `FakeRelay.result_url` sending `url` for image 2 of 3 and real assets otherwise."""
    return lambda index, real: url if index == 1 else real


def assert_one_refused(events: list[object], kind: type[Exception] = RefusedResultUrl) -> None:
    assert [type(event) for event in events] == [GeneratedImage, ImageFailure, GeneratedImage]
    failure = events[1]
    assert isinstance(failure, ImageFailure) and isinstance(failure.error, kind)
    assert failure.error.user_message.startswith("The image service")


@pytest.mark.parametrize(
    "template",
    [
        "{listener}/latest/meta-data/",  # loopback, but not the relay's port
        "http://localhost:{port}/x.jpeg",
        "//127.0.0.1:{port}/scheme-relative.jpeg",
        "http://[::ffff:127.0.0.1]:{port}/mapped.jpeg",
        "http://2130706433:{port}/decimal.jpeg",
    ],
)
async def test_a_loopback_url_off_the_relay_origin_is_never_fetched(
    relay: FakeRelay, make_client: ClientFactory, listener: Listener, template: str
) -> None:
    relay.result_url = only_second(template.format(listener=listener.origin, port=listener.port))

    events = await collect(make_client(), SET_OF_THREE)

    assert_one_refused(events)
    assert listener.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://10.1.2.3/x.jpeg",
        "http://192.168.0.1/x.jpeg",
        "http://[fd00::1]/x.jpeg",
        "http://0.0.0.0/x.jpeg",
        "file:///etc/passwd",
        "ftp://example.com/x.jpeg",
    ],
)
async def test_metadata_private_and_non_http_urls_are_refused(
    relay: FakeRelay, make_client: ClientFactory, url: str
) -> None:
    relay.result_url = only_second(url)

    assert_one_refused(await collect(make_client(), SET_OF_THREE))


async def test_a_relative_url_is_fetched_from_the_relay_origin(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.result_url = lambda index, real: real.removeprefix(relay.origin)  # "/assets/<id>.jpeg"

    events = await collect(make_client(), SET_OF_THREE)

    assert all(isinstance(event, GeneratedImage) for event in events)


async def test_a_public_name_resolving_to_a_private_address_is_refused(
    relay: FakeRelay, listener: Listener
) -> None:
    resolver = MapResolver({"cdn.example.com": "127.0.0.1", "images.example.net": "93.184.216.34"})
    relay.result_url = only_second(f"http://cdn.example.com:{listener.port}/x.jpeg")
    # The session resolves through the same map: a fetch, had it been allowed, would reach the listener.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as session:
        client = SeedreamClient(
            session, base_url=relay.base_url, api_key=relay.api_key, model=relay.model, resolver=resolver
        )
        events = await collect(client, SET_OF_THREE)

    assert_one_refused(events)
    assert listener.hits == []
    assert "cdn.example.com" in resolver.asked


async def test_a_listed_host_is_trusted_even_on_a_private_address(
    relay: FakeRelay, make_client: ClientFactory
) -> None:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=sized_jpeg(7, "32x32"), content_type="image/jpeg")

    async with Listener(image) as cdn:
        relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
        hosts = parse_hosts(f"example.org, 127.0.0.1:{cdn.port}")

        events = await collect(make_client(result_url_hosts=hosts), SET_OF_THREE)

    assert all(isinstance(event, GeneratedImage) for event in events)
    assert cdn.hits == ["/x.jpeg"]


async def test_a_host_list_refuses_every_other_host(relay: FakeRelay, make_client: ClientFactory) -> None:
    relay.result_url = only_second("http://93.184.216.34/x.jpeg")  # public, but not listed

    events = await collect(make_client(result_url_hosts=parse_hosts("images.example.org")), SET_OF_THREE)

    assert_one_refused(events)


def test_host_list_parsing() -> None:
    hosts = parse_hosts(" a.example:8443 ,B.example.,, [::1]:9000")

    assert [(host.host, host.port) for host in hosts] == [("a.example", 8443), ("b.example", None), ("::1", 9000)]
    for bad in ("http://x/", "a:b", "a/b", "a:99999"):
        with pytest.raises(ValueError):
            parse_hosts(bad)


async def test_a_redirect_to_a_private_address_is_refused(relay: FakeRelay, make_client: ClientFactory) -> None:
    async with Listener() as target:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{target.origin}/metadata")

        async with Listener(redirect) as cdn:
            relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
            events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert_one_refused(events)
    assert cdn.hits == ["/x.jpeg"]
    assert target.hits == []


async def test_redirects_within_the_rules_are_followed(relay: FakeRelay, make_client: ClientFactory) -> None:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{relay.origin}/assets/{request.match_info['tail']}")

    async with Listener(redirect) as cdn:
        relay.result_url = lambda index, real: real.replace(f"{relay.origin}/assets", cdn.origin)
        events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert all(isinstance(event, GeneratedImage) for event in events)
    assert len(cdn.hits) == 3


async def test_a_redirect_loop_fails_that_image_only(
    relay: FakeRelay, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/again")

    async with Listener(loop) as cdn:
        relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
        with caplog.at_level(logging.WARNING):
            events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert_one_refused(events)
    assert "redirected too many times" in events[1].error.user_message  # type: ignore[union-attr]
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/x.jpeg", "http://exa mple.com/x", "http://127.0.0.1:-1/x"])
async def test_an_invalid_url_fails_that_image_only(
    relay: FakeRelay, make_client: ClientFactory, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    relay.result_url = only_second(url)

    with caplog.at_level(logging.WARNING):
        events = await collect(make_client(), SET_OF_THREE)

    assert_one_refused(events)
    assert not [record for record in caplog.records if record.exc_info]


async def test_a_body_longer_than_its_content_length_fails_at_most_that_image(
    relay: FakeRelay, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    good = sized_jpeg(3, "32x32")

    async def overlong(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg", "Content-Length": str(len(good))})
        await response.prepare(request)
        await response.write(good + b"\x00" * 5000 + b"HTTP/1.1 200 OK\r\n\r\n")
        return response

    async with Listener(overlong) as cdn:
        relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
        with caplog.at_level(logging.WARNING):
            events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert isinstance(events[0], GeneratedImage) and isinstance(events[2], GeneratedImage)
    assert len(events) == 3 and events[1].index == 1
    assert not [record for record in caplog.records if record.exc_info]


def truncating_server(image: bytes, cuts: list[int]) -> Listener:
    """Serves `image` cut to each length in `cuts` in turn (no Content-Length), then whole."""

    async def serve(request: web.Request) -> web.StreamResponse:
        body = image[: cuts.pop(0)] if cuts else image
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.force_close()
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    return Listener(serve)


async def test_a_truncated_download_is_fetched_again(relay: FakeRelay, make_client: ClientFactory) -> None:
    image = sized_jpeg(5, "64x64")
    async with truncating_server(image, [len(image) // 3]) as cdn:
        relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
        events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert isinstance(events[1], GeneratedImage) and events[1].content == image
    assert len(cdn.hits) == 2


async def test_a_download_truncated_twice_is_a_failed_image(relay: FakeRelay, make_client: ClientFactory) -> None:
    image = sized_jpeg(5, "64x64")
    async with truncating_server(image, [len(image) // 3, len(image) - 2]) as cdn:
        relay.result_url = only_second(f"{cdn.origin}/x.jpeg")
        events = await collect(make_client(result_url_hosts=parse_hosts(f"127.0.0.1:{cdn.port}")), SET_OF_THREE)

    assert_one_refused(events, DamagedImage)
    assert isinstance(events[1], ImageFailure) and isinstance(events[1].error, MalformedResponse)
    assert len(cdn.hits) == 2
