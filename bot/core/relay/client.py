"""The one place that talks to the Seedream relay (`POST {base}/images/generations`).

`SeedreamClient.generate` yields each image as soon as it is finished and downloaded, so a
15-image set starts reaching Discord long before the last image exists. Errors before the
first image raise a typed `SeedreamError` (after retries for throttling, 5xx and broken
connections); once images have been yielded nothing is retried (that would bill and
deliver duplicates): a fatal error becomes one final `ImageFailure`.

The work is split by job: `payload` builds the request body, `transport` sends it with
retries, `decode` turns the answer (JSON or SSE) into events and `fetch` turns each result
item into image bytes. This class only wires them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver

from bot.core.relay.decode import ResponseDecoder
from bot.core.relay.fetch import ImageFetcher
from bot.core.relay.models import GenerationRequest, ImageEvent
from bot.core.relay.payload import ResponseFormat, build_payload
from bot.core.relay.transport import RelayConnectionError, RelayTransport, RetryPolicy
from bot.core.relay.urls import HostPort, ResultUrlPolicy

__all__ = ["RelayConnectionError", "SeedreamClient"]


class SeedreamClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        model: str,
        response_format: ResponseFormat = "url",
        stream: bool = True,
        timeout: float = 600.0,
        max_retries: int = 3,
        retry_budget: float = 120.0,
        max_download_bytes: int = 20 * 2**20,
        backoff_base: float = 1.0,
        result_url_hosts: Sequence[HostPort] = (),
        resolver: AbstractResolver | None = None,
    ) -> None:
        """`result_url_hosts` and `resolver` decide which result URLs are fetched (urls.py)."""
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._response_format: ResponseFormat = response_format
        self._stream = stream
        secrets = (api_key,) if api_key else ()
        policy = ResultUrlPolicy(self._base_url, hosts=result_url_hosts, resolver=resolver)
        fetcher = ImageFetcher(
            session, base_url=self._base_url, max_bytes=max_download_bytes, secrets=secrets, policy=policy
        )
        self._decoder = ResponseDecoder(fetcher, secrets=secrets)
        self._transport = RelayTransport(
            session,
            endpoint=f"{self._base_url}/images/generations",
            api_key=api_key,
            stream=stream,
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries, budget=retry_budget, backoff_base=backoff_base),
        )

    def __repr__(self) -> str:  # never show the key
        return f"SeedreamClient(base_url={self._base_url!r}, model={self._model!r})"

    def build_payload(self, request: GenerationRequest) -> dict[str, object]:
        """The JSON body for one request; raises InvalidRequest for impossible requests."""
        return build_payload(
            request, model=self._model, response_format=self._response_format, stream=self._stream
        )

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[ImageEvent, None]:
        """Yield each image (or per-image failure) as it finishes; see the module docstring."""
        payload = self.build_payload(request)

        def decode(resp: aiohttp.ClientResponse, deadline: float) -> AsyncGenerator[ImageEvent, None]:
            return self._decoder.events(resp, deadline, request.count)

        async with contextlib.aclosing(self._transport.post(payload, decode)) as events:
            async for event in events:
                yield event
