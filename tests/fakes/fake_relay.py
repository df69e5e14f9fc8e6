"""A loopback fake of the Seedream relay (`POST /v1/images/generations`) for tests.

It speaks the real shapes: Ark error envelopes, `data[]` items that
are an image or a per-image `error`, SSE `image_generation.*` frames ending in
`data: [DONE]`, result URLs served from `/assets/<id>.jpeg` on the same server. Images are
real JPEG bytes from Pillow, made in a thread. Scripted faults let tests drive every path:

    async with FakeRelay() as relay:
        relay.fail_next(429, ark_error("ModelAccountIpmRateLimitExceeded"), {"Retry-After": "1"})
        client = SeedreamClient(session, base_url=relay.base_url, api_key=relay.api_key, ...)
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from PIL import Image

from tests.fakes.loopback import serve_on_loopback

DEFAULT_API_KEY = "sk-fake-relay-0123456789abcdef"
DEFAULT_MODEL = "doubao-seedream-4-0-250828"
TIER_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}

ImageFactory = Callable[[int, str], bytes]


def request_id() -> str:
    return "0217" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def ark_error(code: str, message: str | None = None, *, param: str = "", type_: str = "") -> dict[str, Any]:
    """An upstream Ark error envelope; the message ends with a request id like the real one."""
    text = message or f"The request failed with {code}."
    return {
        "error": {
            "code": code,
            "message": f"{text} Request id: {request_id()}",
            "param": param,
            "type": type_,
        }
    }


def new_api_error(message: str, code: str, type_: str = "new_api_error") -> dict[str, Any]:
    """A new-api gateway's own error envelope."""
    return {
        "error": {"message": f"{message} (request id: {uuid.uuid4().hex[:20]})", "type": type_, "code": code}
    }


def _encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _colour(index: int) -> tuple[int, int, int]:
    return ((53 * index + 40) % 256, (97 * index + 120) % 256, (151 * index + 200) % 256)


def solid_jpeg(index: int, size: str) -> bytes:
    """The cheap default: a 32x32 JPEG whose colour depends on the index."""
    return _encode_jpeg(Image.new("RGB", (32, 32), _colour(index)))


def dimensions_for(size: str) -> tuple[int, int]:
    if size.upper() in TIER_SIDES:
        side = TIER_SIDES[size.upper()]
        return side, side
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if match is None:
        return 2048, 2048
    return int(match.group(1)), int(match.group(2))


def sized_jpeg(index: int, size: str) -> bytes:
    """A solid JPEG at the requested size (tiers map to 1024/2048/4096 squares)."""
    return _encode_jpeg(Image.new("RGB", dimensions_for(size), _colour(index)))


@functools.cache
def large_jpeg() -> bytes:
    """A 4096x4096 noise JPEG at quality 95 (about 18 MiB), made once per test session."""
    noise = Image.frombytes("RGB", (4096, 4096), os.urandom(4096 * 4096 * 3))
    return _encode_jpeg(noise, quality=95)


def large_jpeg_factory(index: int, size: str) -> bytes:
    return large_jpeg()


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # parsed JSON, or None when the body was not JSON
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    drop_after_images: int | None = None


@dataclass
class _Outcome:
    index: int
    content: bytes | None = None
    size: str | None = None
    asset_id: str | None = None
    error_code: str | None = None


class FakeRelay:
    def __init__(self, *, api_key: str = DEFAULT_API_KEY, model: str = DEFAULT_MODEL) -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.asset_requests: list[RecordedRequest] = []
        self.served_images: list[bytes] = []
        self.served_by_request: list[list[bytes]] = []
        self.image_factory: ImageFactory = solid_jpeg
        self.latency = 0.0
        self.in_flight = 0  # generation requests being answered now, and the most there ever were
        self.peak_in_flight = 0
        # Hold each generation after this many images until `release` is set (None: never hold):
        # a job held mid-generation, e.g. to stop or kill its process there.
        self.hold_after: int | None = None
        self.release = asyncio.Event()
        self.holding = asyncio.Event()  # set while a stream is held
        self.per_image_delay = 0.0
        self.image_errors: dict[int, str] = {}
        self.produce: int | None = None
        self.json_to_stream = False
        self.stream_style: Literal["ark", "completed_per_image"] = "ark"
        self.chunked_assets = False  # serve assets without Content-Length
        self.listed_models: list[str] = [model]  # what GET /v1/models lists
        self.model_requests: list[RecordedRequest] = []  # GET /v1/models (not in `requests`)
        # Rewrites result URLs: (image index, the URL the relay would send) -> the URL it sends.
        self.result_url: Callable[[int, str], str] | None = None
        self._script: deque[_Scripted] = deque()
        self._assets: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/images/generations", self._generate)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/assets/{asset_id}.jpeg", self._asset)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
        await self._runner.setup()
        self.port = await serve_on_loopback(self._runner)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- scripting ---------------------------------------------------------------------

    def fail_next(
        self, status: int, body: Mapping[str, Any] | str | bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next generation request with this status and body (JSON for a mapping)."""
        merged = dict(headers or {})
        if isinstance(body, Mapping):
            raw = json.dumps(body).encode()
            merged.setdefault("Content-Type", "application/json")
        else:
            raw = body.encode() if isinstance(body, str) else body
            merged.setdefault("Content-Type", "text/plain; charset=utf-8")
        self._script.append(_Scripted(status=status, body=raw, headers=merged))

    def respond_next_raw(
        self,
        chunks: list[bytes | str],
        *,
        status: int = 200,
        content_type: str = "text/event-stream",
        chunk_delay: float = 0.0,
    ) -> None:
        """Answer the next request with these exact body pieces, each written (and flushed) separately."""
        pieces = [chunk.encode() if isinstance(chunk, str) else chunk for chunk in chunks]
        self._script.append(
            _Scripted(
                status=status, headers={"Content-Type": content_type}, chunks=pieces, chunk_delay=chunk_delay
            )
        )

    def drop_connection_next(self, after_images: int = 0) -> None:
        """Close the socket on the next request: before any byte, or after `after_images` SSE images."""
        self._script.append(_Scripted(drop_after_images=after_images))

    # ---- handlers ----------------------------------------------------------------------

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        self.asset_requests.append(RecordedRequest(request.method, request.path, dict(request.headers)))
        content = self._assets.get(request.match_info["asset_id"])
        if content is None:
            return web.Response(status=404, text="NoSuchKey")
        if not self.chunked_assets:
            return web.Response(body=content, content_type="image/jpeg")
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(content), 65536):
            await response.write(content[start : start + 65536])
        await response.write_eof()
        return response

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's model list, as new-api style relays answer it; a wrong key is a 401."""
        self.model_requests.append(RecordedRequest(request.method, request.path, dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(401, new_api_error("Invalid token", "invalid_api_key", "invalid_request_error"))
        return self._json(200, {"object": "list", "data": [
            {"id": model, "object": "model", "created": 1_756_339_200, "owned_by": "volcengine"}
            for model in self.listed_models]})

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(
                401,
                ark_error(
                    "AuthenticationError",
                    "The API key or AK/SK in the request is missing or invalid.",
                    type_="Unauthorized",
                ),
            )
        scripted = self._script.popleft() if self._script else None
        if scripted is not None and scripted.drop_after_images is None:
            return await self._play(request, scripted)
        problem = self._validate(body)
        if problem is not None:
            return self._json(400, problem)
        assert isinstance(body, dict)
        drop_after = scripted.drop_after_images if scripted is not None else None
        if drop_after == 0:
            return self._drop(request)
        if body.get("stream") is True and not self.json_to_stream:
            return await self._stream(request, body, drop_after)
        outcomes = await self._produce_all(body)
        return self._json(200, self._json_body(body, outcomes))

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            return ark_error("InvalidParameter", "The request body is not valid JSON.")
        for name in ("model", "prompt"):
            if not body.get(name):
                return ark_error(
                    "MissingParameter", f"The required parameter `{name}` is missing.", param=name
                )
        size = str(body.get("size", "2048x2048"))
        if size.upper() not in TIER_SIDES:
            match = re.fullmatch(r"(\d+)x(\d+)", size)
            valid = False
            if match:
                width, height = int(match.group(1)), int(match.group(2))
                valid = (
                    921_600 <= width * height <= 16_777_216 and width <= 16 * height and height <= 16 * width
                )
            if not valid:
                return ark_error(
                    "InvalidParameter",
                    "The parameter `size` specified in the request is not valid: image size must be at least "
                    "921600 pixels.",
                    param="size",
                )
        return None

    def _requested_count(self, body: Mapping[str, Any]) -> int:
        count = 1
        if body.get("sequential_image_generation") == "auto":
            options = body.get("sequential_image_generation_options") or {}
            count = int(options.get("max_images", 15))
        if self.produce is not None:
            count = min(count, self.produce)
        return count

    async def _produce_one(self, index: int, size: str, served: list[bytes]) -> _Outcome:
        if index in self.image_errors:
            return _Outcome(index, error_code=self.image_errors[index])
        factory = self.image_factory

        def make() -> tuple[bytes, str | None]:
            content = factory(index, size)
            try:
                with Image.open(io.BytesIO(content)) as image:
                    width, height = image.size
            except OSError:  # a test serving deliberately broken bytes
                return content, None
            return content, f"{width}x{height}"

        content, actual = await asyncio.to_thread(make)
        asset_id = uuid.uuid4().hex
        self._assets[asset_id] = content
        self.served_images.append(content)
        served.append(content)
        return _Outcome(index, content=content, size=actual, asset_id=asset_id)

    async def _hold(self, images_so_far: int) -> None:
        if self.hold_after is not None and images_so_far >= self.hold_after and not self.release.is_set():
            self.holding.set()
            await self.release.wait()

    async def _produce_all(self, body: Mapping[str, Any]) -> list[_Outcome]:
        served: list[bytes] = []
        self.served_by_request.append(served)
        size = str(body.get("size", "2048x2048"))
        outcomes: list[_Outcome] = []
        for index in range(self._requested_count(body)):
            await self._hold(len(outcomes))
            if self.per_image_delay:
                await asyncio.sleep(self.per_image_delay)
            outcomes.append(await self._produce_one(index, size, served))
        return outcomes

    def _image_fields(self, body: Mapping[str, Any], outcome: _Outcome) -> dict[str, Any]:
        assert outcome.content is not None
        if body.get("response_format") == "b64_json":
            return {"b64_json": base64.b64encode(outcome.content).decode(), "size": outcome.size}
        url = f"{self.origin}/assets/{outcome.asset_id}.jpeg"
        if self.result_url is not None:
            url = self.result_url(outcome.index, url)
        return {"url": url, "size": outcome.size}

    @staticmethod
    def _item_error(code: str) -> dict[str, str]:
        return {"code": code, "message": f"The request failed because of {code}."}

    def _usage(self, outcomes: list[_Outcome]) -> dict[str, int]:
        produced = [o for o in outcomes if o.content is not None]
        tokens = 0
        for outcome in produced:
            width, height = (int(part) for part in (outcome.size or "0x0").split("x"))
            tokens += round(width * height / 256)
        return {"generated_images": len(produced), "output_tokens": tokens, "total_tokens": tokens}

    def _json_body(self, body: Mapping[str, Any], outcomes: list[_Outcome]) -> dict[str, Any]:
        data: list[dict[str, Any]] = []
        for outcome in outcomes:
            if outcome.error_code is not None:
                data.append({"error": self._item_error(outcome.error_code)})
            else:
                data.append(self._image_fields(body, outcome))
        return {
            "model": self.model,
            "created": int(time.time()),
            "data": data,
            "usage": self._usage(outcomes),
        }

    async def _stream(
        self, request: web.Request, body: Mapping[str, Any], drop_after: int | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        served: list[bytes] = []
        self.served_by_request.append(served)
        size = str(body.get("size", "2048x2048"))
        outcomes: list[_Outcome] = []
        images_sent = 0
        for index in range(self._requested_count(body)):
            await self._hold(images_sent)
            if self.per_image_delay:
                await asyncio.sleep(self.per_image_delay)
            outcome = await self._produce_one(index, size, served)
            outcomes.append(outcome)
            frame: dict[str, Any] = {"model": self.model, "created": int(time.time())}
            if outcome.error_code is not None:
                event = "image_generation.partial_failed"
                frame |= {"image_index": index, "error": self._item_error(outcome.error_code)}
            elif self.stream_style == "completed_per_image":
                event = "image_generation.completed"
                frame |= self._image_fields(body, outcome)
            else:
                event = "image_generation.partial_succeeded"
                frame |= {"image_index": index} | self._image_fields(body, outcome)
            await response.write(_sse(event, frame))
            if outcome.content is not None:
                images_sent += 1
            if drop_after is not None and images_sent >= drop_after:
                return self._drop(request, response)
        completed = {"model": self.model, "created": int(time.time()), "usage": self._usage(outcomes)}
        await response.write(_sse("image_generation.completed", completed))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _play(self, request: web.Request, scripted: _Scripted) -> web.StreamResponse:
        if scripted.chunks is None:
            return web.Response(status=scripted.status, body=scripted.body, headers=scripted.headers)
        response = web.StreamResponse(status=scripted.status, headers=scripted.headers)
        await response.prepare(request)
        for chunk in scripted.chunks:
            if scripted.chunk_delay:
                await asyncio.sleep(scripted.chunk_delay)
            await response.write(chunk)
        await response.write_eof()
        return response

    @staticmethod
    def _drop(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
        if request.transport is not None:
            if response is None:
                request.transport.abort()  # nothing sent: the client sees a disconnect
            else:
                request.transport.close()  # flush what was written, then cut the chunked body short
        return response or web.Response(status=200)

    @staticmethod
    def _json(status: int, body: Mapping[str, Any]) -> web.Response:
        return web.json_response(dict(body), status=status)


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    payload = {"type": event} | dict(data)
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()
