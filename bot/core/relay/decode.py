"""Turning a successful relay response (plain JSON or SSE events) into `ImageEvent`s.

Errors the body reports are raised as plain `SeedreamError`s; whether one is retried is
the transport's decision, not the decoder's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence

import aiohttp

from bot.core.format import megabytes
from bot.core.i18n import tr
from bot.core.relay.bodies import off_loop, read_capped
from bot.core.relay.classify import classify, classify_item_error, error_from_object
from bot.core.relay.errors import MalformedResponse, SeedreamError
from bot.core.relay.fetch import ImageFetcher
from bot.core.relay.models import ImageEvent, ImageFailure
from bot.core.relay.sse import FrameTooLarge, SSEEvent, aiter_sse

log = logging.getLogger(__name__)

# Room for the JSON around one image's `b64_json` (size, usage, a long URL, error texts).
FRAME_OVERHEAD = 64 * 1024
JSON_BODY_OVERHEAD = 1 << 20

_EVENT_SUCCEEDED = "image_generation.partial_succeeded"
_EVENT_FAILED = "image_generation.partial_failed"
_EVENT_COMPLETED = "image_generation.completed"
_EVENT_PREVIEW = "image_generation.partial_image"
_SSE_PREFIXES = (b"event:", b"data:", b":", b"id:", b"retry:")


class ResponseDecoder:
    def __init__(self, fetcher: ImageFetcher, *, secrets: Sequence[str]) -> None:
        self.fetcher = fetcher
        self._secrets = tuple(secrets)

    def __repr__(self) -> str:  # never show the key
        return f"ResponseDecoder({self.fetcher!r})"

    @property
    def max_frame(self) -> int:
        """The longest SSE frame accepted: one image's `b64_json` and its JSON around it."""
        return 4 * -(-self.fetcher.max_bytes // 3) + FRAME_OVERHEAD

    def max_json_body(self, max_images: int) -> int:
        """The largest JSON body accepted: one frame's worth per image asked for."""
        return self.max_frame * max(1, max_images) + JSON_BODY_OVERHEAD

    async def events(
        self, resp: aiohttp.ClientResponse, deadline: float, max_images: int
    ) -> AsyncGenerator[ImageEvent, None]:
        """The response's images, indexed 0..max_images-1 (see `ArrivalIndex`)."""
        indexes = ArrivalIndex(max_images)
        async with contextlib.aclosing(self._events(resp, deadline, max_images)) as events:
            async for event in events:
                index = indexes.claim(event.index)
                if index is None:
                    log.warning("the relay sent more images than the %d asked for; ignoring one", max_images)
                    continue
                yield event if index == event.index else dataclasses.replace(event, index=index)

    async def _events(
        self, resp: aiohttp.ClientResponse, deadline: float, max_images: int
    ) -> AsyncGenerator[ImageEvent, None]:
        """Decide JSON vs SSE by content type, then by the first non-blank body byte."""
        chunks = resp.content.iter_any()
        first = b""
        async for chunk in chunks:
            first += chunk
            if first.strip():
                break
        content_type = resp.headers.get("Content-Type", "").lower()
        is_json = "json" in content_type or (
            "event-stream" not in content_type and first.lstrip().startswith((b"{", b"["))
        )
        if is_json:
            limit = self.max_json_body(max_images)

            def too_large() -> SeedreamError:
                return MalformedResponse(
                    tr("The image service sent a response larger than the bot accepts ({size}).", size=megabytes(limit))
                )

            if len(first) > limit:
                raise too_large()
            body = first + await read_capped(resp, limit - len(first), too_large)
            async with contextlib.aclosing(self.json_events(body, resp.status, deadline)) as events:
                async for event in events:
                    yield event
            return
        looks_like_sse = first.lstrip().startswith(_SSE_PREFIXES)
        if "event-stream" not in content_type and first.strip() and not looks_like_sse:
            raise MalformedResponse()

        async def replay() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk

        stream = _SSEStream(self, resp.status, deadline)
        async with contextlib.aclosing(stream.events(replay())) as events:
            async for event in events:
                yield event

    async def json_events(self, body: bytes, status: int, deadline: float) -> AsyncGenerator[ImageEvent, None]:
        try:
            value = await off_loop(json.loads, body, len(body))
        except ValueError:
            raise MalformedResponse("The image service sent a response the bot could not read.") from None
        if not isinstance(value, Mapping):
            raise MalformedResponse
        items = _items(value.get("data"))
        usable = [
            item for item in items if isinstance(item, Mapping) and (item.get("url") or item.get("b64_json"))
        ]
        top_error = error_from_object(value)
        if top_error is not None and not usable:
            raise classify(status, top_error, secrets=self._secrets)
        for index, item in enumerate(items):
            yield await self.fetcher.item_event(index, item, deadline)

    def classify_error(self, status: int, value: Mapping[str, object]) -> SeedreamError:
        return classify(
            status, error_from_object(value) or error_from_object({"error": value}), secrets=self._secrets
        )

    def item_error(self, index: int, error: object) -> ImageFailure:
        return ImageFailure(index, classify_item_error(error, secrets=self._secrets))


class _SSEStream:
    """The frames of one SSE response, and the image index reached so far."""

    def __init__(self, decoder: ResponseDecoder, status: int, deadline: float) -> None:
        self._decoder = decoder
        self._status = status
        self._deadline = deadline
        self._next_index = 0
        self._unreadable = 0

    async def events(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[ImageEvent, None]:
        limit = self._decoder.max_frame
        try:
            async with contextlib.aclosing(self._frames(chunks, limit)) as events:
                async for event in events:
                    yield event
        except FrameTooLarge:
            raise MalformedResponse(
                tr("The image service sent a stream event larger than the bot accepts ({size}).", size=megabytes(limit))
            ) from None

    async def _frames(self, chunks: AsyncIterator[bytes], limit: int) -> AsyncGenerator[ImageEvent, None]:
        async with contextlib.aclosing(read_ahead(aiter_sse(chunks, limit))) as frames:
            async for frame in frames:
                data = frame.data.strip()
                if data == "[DONE]":
                    return
                if not data:
                    continue
                value = await self._parse(data)
                if value is None:
                    continue
                async with contextlib.aclosing(self._frame_events(frame.event, value, data)) as events:
                    async for event in events:
                        yield event
        if self._unreadable:
            log.warning("%d SSE frames could not be read", self._unreadable)

    async def _parse(self, data: str) -> Mapping[str, object] | None:
        try:
            value = await off_loop(json.loads, data, len(data))
        except ValueError:
            self._unreadable += 1
            log.warning("skipping an unreadable SSE frame (%d bytes)", len(data))
            return None
        return value if isinstance(value, Mapping) else None

    async def _frame_events(
        self, event: str | None, value: Mapping[str, object], data: str
    ) -> AsyncGenerator[ImageEvent, None]:
        fetcher = self._decoder.fetcher
        # The JSON `type` repeats the event name; some servers label every frame "message".
        kind = event if event not in (None, "message") else _text(value.get("type"))
        final = kind in (_EVENT_SUCCEEDED, _EVENT_COMPLETED)
        if kind == _EVENT_PREVIEW:
            return
        if kind == _EVENT_FAILED:
            yield self._decoder.item_error(self._claim(value), value.get("error"))
        elif final and (value.get("url") or value.get("b64_json")):
            yield await fetcher.item_event(self._claim(value), value, self._deadline)
        elif kind == "error" or (not final and "error" in value):
            raise self._decoder.classify_error(self._status, value)
        elif kind == _EVENT_COMPLETED:
            items = value.get("data")
            if isinstance(items, list):  # a relay packing the images into the final event
                for item in items:
                    yield await fetcher.item_event(self._next_index, item, self._deadline)
                    self._next_index += 1
            log.debug("relay completed: %s", value.get("usage"))
        elif kind == _EVENT_SUCCEEDED:
            failure = MalformedResponse("The image service reported an image without data.")
            yield ImageFailure(self._claim(value), failure)
        elif "data" in value and "type" not in value:
            # An OpenAI-shaped JSON body delivered as a single SSE frame.
            body = self._decoder.json_events(data.encode(), self._status, self._deadline)
            async with contextlib.aclosing(body) as events:
                async for image in events:
                    self._next_index = max(self._next_index, image.index + 1)
                    yield image

    def _claim(self, value: Mapping[str, object]) -> int:
        """The frame's image index (or the next one), advancing the stream past it."""
        index = _index(value, self._next_index)
        self._next_index = max(self._next_index, index + 1)
        return index


async def read_ahead(frames: AsyncIterator[SSEEvent]) -> AsyncGenerator[SSEEvent, None]:
    """Keep reading the stream while the consumer downloads or delivers earlier images.

    aiohttp raises a broken connection's error before handing out bytes it already
    buffered, so without this a frame that arrived before the break (an image the relay
    already billed) would be lost. A task pulls frames into a queue; the error, if any, is
    queued after them. Memory is bounded by the response itself, as for a JSON answer.
    """
    queue: asyncio.Queue[SSEEvent | Exception | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for frame in frames:
                queue.put_nowait(frame)
                if frame.data.strip() == "[DONE]":
                    break
        except Exception as error:  # includes TimeoutError from aiohttp's total timeout
            queue.put_nowait(error)
        else:
            queue.put_nowait(None)

    task = asyncio.create_task(pump())
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ArrivalIndex:
    """Image indices the bot can trust: 0..count-1, each used once.

    The relay's index is kept when it is in range and new; a missing, repeated or
    out-of-range one becomes the lowest index still free (the image's arrival order).
    None once all `count` are taken: an image beyond the request is not delivered.
    """

    def __init__(self, count: int) -> None:
        self._count = max(1, count)
        self._used: set[int] = set()

    def claim(self, reported: int) -> int | None:
        if not 0 <= reported < self._count or reported in self._used:
            free = (index for index in range(self._count) if index not in self._used)
            reported = next(free, -1)
            if reported < 0:
                return None
        self._used.add(reported)
        return reported


def _items(data: object) -> list[object]:
    if isinstance(data, list):
        return list(data)
    if isinstance(data, Mapping) and data:
        return [data]
    return []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _index(value: Mapping[str, object], default: int) -> int:
    index = value.get("image_index")
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return index
    return default
