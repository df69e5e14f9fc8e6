"""Property-based tests (hypothesis) for what the bot takes from the relay and from members (issue 12)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import ipaddress

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.core.images.references import InvalidReference, inspect_reference, to_data_uri
from bot.core.relay.fetch import ImageFetcher
from bot.core.relay.models import GeneratedImage, ImageFailure
from bot.core.relay.sse import FrameTooLarge, SSEEvent, SSEParser
from bot.core.relay.urls import ResultUrlPolicy
from tests.seedream.hostile import Listener, MapResolver

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encoded(fmt: str) -> bytes:
    image = Image.radial_gradient("L").convert("RGB").resize((48, 40))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


IMAGES = {fmt: _encoded(fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF")}
PIXELS = {fmt: Image.open(io.BytesIO(data)).convert("RGB").tobytes() for fmt, data in IMAGES.items()}


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """An image cut short or with bytes flipped; the flag says whether it was only truncated."""
    fmt = draw(st.sampled_from(sorted(IMAGES)))
    data = bytearray(IMAGES[fmt])
    if draw(st.booleans()):
        return fmt, bytes(data[: draw(st.integers(0, len(data) - 1))]), True
    for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
        data[position] ^= draw(st.integers(1, 255))
    return fmt, bytes(data), False


# --- the SSE parser ----------------------------------------------------------------------

FRAME_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=40)


def _stream(frames: list[tuple[str | None, list[str]]], newline: bytes) -> bytes:
    out = b""
    for event, lines in frames:
        if event:
            out += b"event: " + event.encode() + newline
        for line in lines:
            out += b"data: " + line.encode() + newline
        out += newline
    return out


def _parse(stream: bytes, cuts: list[int], max_frame: int | None = None) -> list[SSEEvent]:
    parser = SSEParser(max_frame)
    events, last = [], 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        events += parser.feed(stream[last:cut])
        last = cut
    return events + parser.finish()


@QUICK
@given(
    frames=st.lists(
        st.tuples(st.none() | st.sampled_from(["message", "x"]), st.lists(FRAME_TEXT, min_size=1, max_size=3)),
        min_size=1,
        max_size=6,
    ),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    data=st.data(),
)
def test_any_split_of_a_stream_gives_the_same_frames(
    frames: list[tuple[str | None, list[str]]], newline: bytes, data: st.DataObject
) -> None:
    stream = _stream(frames, newline)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))

    assert _parse(stream, cuts) == _parse(stream, [])
    assert [event.data for event in _parse(stream, [])] == ["\n".join(lines) for _, lines in frames]


@QUICK
@given(size=st.integers(1001, 5000), lines=st.integers(1, 4), data=st.data())
def test_an_oversized_frame_is_refused_however_it_is_split(size: int, lines: int, data: st.DataObject) -> None:
    stream = b"data: ok\n\n" + b"".join(b"data: " + b"A" * (size // lines + 1) + b"\n" for _ in range(lines)) + b"\n"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))

    try:
        _parse(stream, cuts, max_frame=1000)
    except FrameTooLarge:
        return
    raise AssertionError("an oversized frame was accepted")


# --- the result decoder ------------------------------------------------------------------


async def _item(item: object) -> object:
    async with aiohttp.ClientSession() as session:
        fetcher = ImageFetcher(session, base_url="http://127.0.0.1:9/v1", max_bytes=1 << 20, secrets=())
        return await fetcher.item_event(0, item, asyncio.get_running_loop().time() + 30)


@QUICK
@given(damaged())
def test_a_damaged_result_is_a_failure_or_decodes_whole(case: tuple[str, bytes, bool]) -> None:
    fmt, content, truncated = case

    event = asyncio.run(_item({"b64_json": base64.b64encode(content).decode()}))

    assert isinstance(event, (GeneratedImage, ImageFailure))
    if isinstance(event, GeneratedImage):
        with Image.open(io.BytesIO(event.content)) as image:
            pixels = image.convert("RGB").tobytes()  # raises if it does not decode
        if truncated:
            assert pixels == PIXELS[fmt]  # only a cut that lost nothing of the picture passes


@QUICK
@given(st.binary(max_size=300) | st.text(max_size=50).map(lambda text: text.encode()))
def test_arbitrary_inline_data_never_raises(content: bytes) -> None:
    encoded = base64.b64encode(content).decode()
    for item in ({"b64_json": encoded}, {"b64_json": encoded[:-1] + "!"}, {"b64_json": 5}, ["x"]):
        assert isinstance(asyncio.run(_item(item)), (GeneratedImage, ImageFailure))


# --- the reference check ------------------------------------------------------------------


@QUICK
@given(damaged())
def test_a_damaged_reference_is_refused_kindly_or_encodes(case: tuple[str, bytes, bool]) -> None:
    fmt, content, _ = case

    try:
        reference = asyncio.run(inspect_reference(f"ref.{fmt.lower()}", content))
    except InvalidReference as refused:
        assert refused.rule in ("type", "damaged", "min_side", "pixels", "ratio", "bytes")
        return
    uri = to_data_uri(reference)
    _, _, body = uri.partition(",")
    Image.open(io.BytesIO(base64.b64decode(body))).load()


@QUICK
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_as_a_reference_are_refused_kindly(content: bytes) -> None:
    with contextlib.suppress(InvalidReference):
        asyncio.run(inspect_reference("x.png", content))


# --- hostile URLs -------------------------------------------------------------------------

PRIVATE_NETWORKS = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
    "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10", "::ffff:127.0.0.0/104",
]


@st.composite
def private_address(draw: st.DrawFn) -> str:
    network = ipaddress.ip_network(draw(st.sampled_from(PRIVATE_NETWORKS)))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return str(network.network_address + offset)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@st.composite
def hostile_url(draw: st.DrawFn, listener_port: int) -> tuple[str, dict[str, str]]:
    """A URL that must not be fetched, and the name map a resolver answers with."""
    kind = draw(st.sampled_from(["literal", "name", "loopback-port", "scheme"]))
    path = draw(st.sampled_from(["/", "/x.jpeg", "/latest/meta-data/", "/a/../b?c=d#e"]))
    if kind == "literal":
        return f"http://{_host(draw(private_address()))}:{listener_port}{path}", {}
    if kind == "name":
        name = draw(st.sampled_from(["cdn.example.com", "images.relay.net", "x.y.z"]))
        return f"https://{name}:{listener_port}{path}", {name: draw(private_address())}
    if kind == "loopback-port":
        return f"http://127.0.0.1:{listener_port}{path}", {}
    scheme = draw(st.sampled_from(["file", "ftp", "gopher", "data", "javascript"]))
    return f"{scheme}://127.0.0.1:{listener_port}{path}", {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_hostile_url_is_ever_fetched(data: st.DataObject) -> None:
    async def main() -> None:
        async with Listener() as listener:
            url, names = data.draw(hostile_url(listener.port))
            # Everything on the listener's 127.0.0.1 answers; the relay "lives" on another port.
            resolver = MapResolver({**names, "localhost": "127.0.0.1"})
            connector = aiohttp.TCPConnector(resolver=resolver)
            async with aiohttp.ClientSession(connector=connector) as session:
                policy = ResultUrlPolicy("http://127.0.0.1:9/v1", resolver=resolver)
                fetcher = ImageFetcher(session, base_url="http://127.0.0.1:9/v1", max_bytes=1 << 20,
                                       secrets=(), policy=policy)
                event = await fetcher.item_event(0, {"url": url}, asyncio.get_running_loop().time() + 10)
            assert isinstance(event, ImageFailure), (url, event)
            assert listener.hits == [], url

    asyncio.run(main())


def test_the_listener_would_see_an_allowed_fetch() -> None:
    """The control for the property above: the same setup does reach the listener when allowed."""

    async def main() -> list[str]:
        async with Listener() as listener, aiohttp.ClientSession() as session:
            fetcher = ImageFetcher(session, base_url=f"{listener.origin}/v1", max_bytes=1 << 20, secrets=())
            await fetcher.item_event(0, {"url": "/x.jpeg"}, asyncio.get_running_loop().time() + 10)
            return listener.hits

    assert asyncio.run(main()) == ["/x.jpeg"]

