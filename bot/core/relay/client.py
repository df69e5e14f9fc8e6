"""The one place that talks to the Seedream relay (`POST {base}/images/generations`).

`SeedreamClient.generate` yields each image as soon as it is finished and downloaded, so a
15-image set starts reaching Discord long before the last image exists. Errors before the
first image raise a typed `SeedreamError` (after retries for throttling, 5xx and broken
connections); once images have been yielded nothing is retried (that would bill and
deliver duplicates): a fatal error becomes one final `ImageFailure`.

Payload choice: a single image sends `sequential_image_generation: "disabled"` explicitly,
like `watermark`, so a relay or model whose default differs cannot turn it into a set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.core.format import megabytes
from bot.core.images.sizes import parse_size
from bot.core.images.sniff import sniff_content_type
from bot.core.limits import MAX_IMAGES
from bot.core.relay.classify import (
    classify,
    classify_item_error,
    classify_response,
    error_from_object,
    redact,
    retry_after_from_headers,
)
from bot.core.relay.errors import (
    InvalidRequest,
    MalformedResponse,
    RateLimited,
    RelayTimeout,
    SeedreamError,
    ServerError,
)
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageEvent, ImageFailure
from bot.core.relay.sse import SSEEvent, aiter_sse

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")

ERROR_BODY_LIMIT = 1 << 20
JSON_BODY_OVERHEAD = 1 << 20
THREAD_THRESHOLD = 256 * 1024  # decode/parse bigger payloads off the event loop
DOWNLOAD_ATTEMPTS = 2
DOWNLOAD_CHUNK = 64 * 1024

_EVENT_SUCCEEDED = "image_generation.partial_succeeded"
_EVENT_FAILED = "image_generation.partial_failed"
_EVENT_COMPLETED = "image_generation.completed"
_EVENT_PREVIEW = "image_generation.partial_image"

CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


class RelayConnectionError(ServerError):
    """The connection to the relay failed or broke mid-answer (retried like a 5xx)."""

    user_message = "The connection to the image service broke. Please try again later."


class _Retry(Exception):
    """Internal: the attempt failed before any image and may be retried."""

    def __init__(self, error: SeedreamError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass
class _Progress:
    yielded: int = 0
    next_index: int = 0
    failures: int = 0



def _normalize_reported_size(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return "".join(value.split()).replace("\u00d7", "x").replace("X", "x").replace("*", "x")



class SeedreamClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        model: str,
        response_format: Literal["url", "b64_json"] = "url",
        stream: bool = True,
        timeout: float = 600.0,
        max_retries: int = 3,
        retry_budget: float = 120.0,
        max_download_bytes: int = 50 * 2**20,
        backoff_base: float = 1.0,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._endpoint = f"{self._base_url}/images/generations"
        self._api_key = api_key
        self._model = model
        self._response_format = response_format
        self._stream = stream
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_budget = retry_budget
        self._max_download_bytes = max_download_bytes
        self._backoff_base = backoff_base
        self._secrets = (api_key,) if api_key else ()

    def __repr__(self) -> str:  # never show the key
        return f"SeedreamClient(base_url={self._base_url!r}, model={self._model!r})"

    def build_payload(self, request: GenerationRequest) -> dict[str, object]:
        """The JSON body for one request; raises InvalidRequest for impossible requests."""
        if not request.prompt.strip():
            raise InvalidRequest("The prompt is empty.")
        if request.count < 1:
            raise InvalidRequest("At least one image must be requested.")
        if request.count + len(request.references) > MAX_IMAGES:
            raise InvalidRequest(
                f"Reference images plus requested images can be at most {MAX_IMAGES} "
                f"(asked for {request.count} with {len(request.references)} references)."
            )
        payload: dict[str, object] = {
            "model": self._model,
            "prompt": request.prompt,
            "size": parse_size(request.size),
            "response_format": self._response_format,
            "watermark": request.watermark,
        }
        if request.references:
            refs = list(request.references)
            payload["image"] = refs[0] if len(refs) == 1 else refs
        if request.count > 1:
            payload["sequential_image_generation"] = "auto"
            payload["sequential_image_generation_options"] = {"max_images": request.count}
        else:
            payload["sequential_image_generation"] = "disabled"
        if self._stream:
            payload["stream"] = True
        if request.user:
            payload["user"] = request.user
        return payload

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[ImageEvent, None]:
        """Yield each image (or per-image failure) as it finishes; see the module docstring."""
        payload = self.build_payload(request)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout
        attempt = 0
        while True:
            try:
                async with contextlib.aclosing(self._attempt(payload, deadline, request.count)) as events:
                    async for event in events:
                        yield event
                return
            except _Retry as retry:
                error = retry.error
                if attempt >= self._max_retries:
                    raise error from None
                delay = self._backoff_base * 2**attempt * random.uniform(0.5, 1.5)
                if retry.retry_after is not None:
                    delay = max(delay, retry.retry_after)
                now = loop.time()
                if now - started + delay > self._retry_budget or now + delay >= deadline:
                    log.warning("relay error %s; next retry in %.1fs would exceed the budget", error, delay)
                    raise error from None
                log.warning("relay error %s; retry %d in %.2fs", error, attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(
        self, payload: dict[str, object], deadline: float, max_images: int
    ) -> AsyncGenerator[ImageEvent, None]:
        """One HTTP request. Raises _Retry or a final SeedreamError only before any image."""
        progress = _Progress()
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "text/event-stream, application/json" if self._stream else "application/json",
        }
        try:
            timeout = aiohttp.ClientTimeout(total=self._remaining(deadline))
            async with self._session.post(
                self._endpoint, json=payload, headers=headers, timeout=timeout
            ) as resp:
                if not 200 <= resp.status < 300:
                    body = await self._read_capped(resp, ERROR_BODY_LIMIT, truncate=True)
                    failure = classify_response(resp.status, body, dict(resp.headers), secrets=self._secrets)
                    log.warning("relay answered HTTP %d: %s", resp.status, failure)
                    raise self._maybe_retry(failure, retry_after_from_headers(dict(resp.headers)))
                async with contextlib.aclosing(self._events(resp, deadline, max_images)) as events:
                    async for event in events:
                        progress.next_index = max(progress.next_index, event.index + 1)
                        if isinstance(event, GeneratedImage):
                            progress.yielded += 1
                        else:
                            progress.failures += 1
                        yield event
                if progress.yielded == 0 and progress.failures == 0:
                    raise MalformedResponse("The image service finished without returning any image.")
        except TimeoutError:
            timed_out = RelayTimeout()
            if progress.yielded or progress.failures:
                yield ImageFailure(progress.next_index, timed_out)
                return
            raise timed_out from None
        except CONNECTION_ERRORS as exc:
            log.warning("relay connection failed: %s", redact(repr(exc), self._secrets))
            lost = RelayConnectionError()
            if progress.yielded or progress.failures:
                yield ImageFailure(progress.next_index, lost)
                return
            raise _Retry(lost, None) from None
        except _Retry as retry:
            if progress.yielded or progress.failures:
                yield ImageFailure(progress.next_index, retry.error)
                return
            raise
        except SeedreamError as error:
            if progress.yielded or progress.failures:
                yield ImageFailure(progress.next_index, error)
                return
            raise

    def _maybe_retry(self, error: SeedreamError, retry_after: float | None) -> Exception:
        """Throttling and server errors are retried (4xx and timeouts never are)."""
        if isinstance(error, (RateLimited, ServerError)):
            if isinstance(error, RateLimited) and error.retry_after is not None:
                retry_after = error.retry_after
            return _Retry(error, retry_after)
        return error

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    # ---- response bodies -------------------------------------------------------------

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
            limit = int(self._max_download_bytes * 1.4) * max(1, max_images) + JSON_BODY_OVERHEAD
            body = first + await self._read_capped(resp, limit - len(first))
            async with contextlib.aclosing(self._json_events(body, resp.status, deadline)) as events:
                async for event in events:
                    yield event
            return
        looks_like_sse = first.lstrip().startswith((b"event:", b"data:", b":", b"id:", b"retry:"))
        if "event-stream" not in content_type and first.strip() and not looks_like_sse:
            raise MalformedResponse()

        async def replay() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk

        async with contextlib.aclosing(self._sse_events(replay(), resp.status, deadline)) as events:
            async for event in events:
                yield event

    async def _json_events(
        self, body: bytes, status: int, deadline: float
    ) -> AsyncGenerator[ImageEvent, None]:
        try:
            value = await _off_loop(json.loads, body, len(body))
        except ValueError:
            raise MalformedResponse("The image service sent a response the bot could not read.") from None
        if not isinstance(value, Mapping):
            raise MalformedResponse
        data = value.get("data")
        items: list[object]
        if isinstance(data, list):
            items = list(data)
        elif isinstance(data, Mapping) and data:
            items = [data]
        else:
            items = []
        usable = [
            item for item in items if isinstance(item, Mapping) and (item.get("url") or item.get("b64_json"))
        ]
        top_error = error_from_object(value)
        if top_error is not None and not usable:
            error = classify(status, top_error, secrets=self._secrets)
            raise self._maybe_retry(error, None)
        for index, item in enumerate(items):
            yield await self._item_event(index, item, deadline)

    async def _sse_events(
        self, chunks: AsyncIterator[bytes], status: int, deadline: float
    ) -> AsyncGenerator[ImageEvent, None]:
        next_index = 0
        unreadable = 0
        async with contextlib.aclosing(_read_ahead(aiter_sse(chunks))) as frames:
            async for frame in frames:
                data = frame.data.strip()
                if data == "[DONE]":
                    return
                if not data:
                    continue
                try:
                    value = await _off_loop(json.loads, data, len(data))
                except ValueError:
                    unreadable += 1
                    log.warning("skipping an unreadable SSE frame (%d bytes)", len(data))
                    continue
                if not isinstance(value, Mapping):
                    continue
                # The JSON `type` repeats the event name; some servers label every frame "message".
                kind = frame.event if frame.event not in (None, "message") else _text(value.get("type"))
                if kind == _EVENT_PREVIEW:
                    continue
                if kind == _EVENT_FAILED:
                    index = _index(value, next_index)
                    next_index = max(next_index, index + 1)
                    yield ImageFailure(index, classify_item_error(value.get("error"), secrets=self._secrets))
                    continue
                if kind in (_EVENT_SUCCEEDED, _EVENT_COMPLETED) and (
                    value.get("url") or value.get("b64_json")
                ):
                    index = _index(value, next_index)
                    next_index = max(next_index, index + 1)
                    yield await self._item_event(index, value, deadline)
                    continue
                if kind == "error" or (kind not in (_EVENT_SUCCEEDED, _EVENT_COMPLETED) and "error" in value):
                    error = classify(
                        status,
                        error_from_object(value) or error_from_object({"error": value}),
                        secrets=self._secrets,
                    )
                    raise self._maybe_retry(error, None)
                if kind == _EVENT_COMPLETED:
                    items = value.get("data")
                    if isinstance(items, list):  # a relay packing the images into the final event
                        for item in items:
                            yield await self._item_event(next_index, item, deadline)
                            next_index += 1
                    log.debug("relay completed: %s", value.get("usage"))
                    continue
                if kind == _EVENT_SUCCEEDED:
                    index = _index(value, next_index)
                    next_index = max(next_index, index + 1)
                    yield ImageFailure(
                        index, MalformedResponse("The image service reported an image without data.")
                    )
                    continue
                if "data" in value and "type" not in value:
                    # An OpenAI-shaped JSON body delivered as a single SSE frame.
                    async for event in self._json_events(data.encode(), status, deadline):
                        next_index = max(next_index, event.index + 1)
                        yield event
        if unreadable:
            log.warning("%d SSE frames could not be read", unreadable)

    async def _item_event(self, index: int, item: object, deadline: float) -> ImageEvent:
        """One `data[]` item or success event -> downloaded/decoded image, or its failure."""
        if not isinstance(item, Mapping):
            return ImageFailure(index, MalformedResponse("The image service sent an unreadable image entry."))
        url, b64 = item.get("url"), item.get("b64_json")
        if not url and not b64:
            if item.get("error") is not None:
                return ImageFailure(index, classify_item_error(item.get("error"), secrets=self._secrets))
            return ImageFailure(index, MalformedResponse("The image service returned an image without data."))
        try:
            if isinstance(b64, str) and b64:
                content = await self._decode_b64(b64)
            elif isinstance(url, str):
                content = await self._download(url, deadline)
            else:
                raise MalformedResponse("The image service returned an image entry the bot could not read.")
            content_type = sniff_content_type(content)
            if content_type is None:
                raise MalformedResponse("The image service returned something that is not an image.")
        except SeedreamError as error:
            log.warning("image %d could not be fetched: %s", index, error)
            return ImageFailure(index, error)
        return GeneratedImage(
            index=index,
            content=content,
            size=_normalize_reported_size(item.get("size")),
            content_type=content_type,
        )

    async def _decode_b64(self, text: str) -> bytes:
        if text.startswith("data:"):
            text = text.partition(",")[2]
        if len(text) * 3 // 4 > self._max_download_bytes + 3:
            raise self._too_large()
        try:
            content = await _off_loop(_b64decode, text, len(text))
        except (binascii.Error, ValueError):
            raise MalformedResponse("The image service sent image data the bot could not decode.") from None
        if len(content) > self._max_download_bytes:
            raise self._too_large()
        return content

    async def _download(self, url: str, deadline: float) -> bytes:
        """Fetch a result URL through the same session, without the relay's API key."""
        url = urljoin(self._base_url + "/", url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise MalformedResponse("The image service returned an image link the bot cannot fetch.")
        last: SeedreamError = ServerError("The generated image could not be downloaded.")
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                timeout = aiohttp.ClientTimeout(total=self._remaining(deadline))
                async with self._session.get(url, timeout=timeout) as resp:
                    if resp.status != 200:
                        last = ServerError(
                            f"The generated image could not be downloaded (HTTP {resp.status}).",
                            status=resp.status,
                        )
                        if resp.status < 500 or attempt + 1 == DOWNLOAD_ATTEMPTS:
                            raise last
                        continue
                    length = resp.content_length
                    if length is not None and length > self._max_download_bytes:
                        raise self._too_large()
                    return await self._read_capped(resp, self._max_download_bytes)
            except CONNECTION_ERRORS as exc:
                log.warning("image download failed: %s", redact(repr(exc), self._secrets))
                last = ServerError("The generated image could not be downloaded.")
        raise last

    def _too_large(self) -> MalformedResponse:
        return MalformedResponse(
            f"A generated image was larger than the bot accepts ({megabytes(self._max_download_bytes)})."
        )

    async def _read_capped(
        self, resp: aiohttp.ClientResponse, limit: int, *, truncate: bool = False
    ) -> bytes:
        """Read a body in chunks, aborting (or truncating) as soon as it passes `limit` bytes."""
        parts: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK):
            total += len(chunk)
            if total > limit:
                if truncate:
                    parts.append(chunk[: max(0, limit - (total - len(chunk)))])
                    resp.release()
                    break
                resp.close()
                raise self._too_large()
            parts.append(chunk)
        return b"".join(parts)


async def _off_loop(func: Callable[[_T], _R], value: _T, size: int) -> _R:
    """Run CPU-heavy parsing in a thread when the input is big enough to stall the loop."""
    if size > THREAD_THRESHOLD:
        return await asyncio.to_thread(func, value)
    return func(value)


async def _read_ahead(frames: AsyncIterator[SSEEvent]) -> AsyncGenerator[SSEEvent, None]:
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


def _b64decode(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _index(value: Mapping[str, object], default: int) -> int:
    index = value.get("image_index")
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return index
    return default
