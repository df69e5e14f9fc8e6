"""The retrying `POST` to the relay.

Errors before the first image raise a typed `SeedreamError` (after retries for
throttling, 5xx and broken connections, with jittered backoff, Retry-After and a retry
budget); once images have been yielded nothing is retried (that would bill and deliver
duplicates): a fatal error becomes one final `ImageFailure`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import aiohttp

from bot.core.i18n import tr
from bot.core.relay.bodies import CONNECTION_ERRORS, read_capped, remaining
from bot.core.relay.classify import classify_response, redact, retry_after_from_headers
from bot.core.relay.errors import MalformedResponse, RateLimited, RelayTimeout, SeedreamError, ServerError
from bot.core.relay.models import ImageEvent, ImageFailure

log = logging.getLogger(__name__)

ERROR_BODY_LIMIT = 1 << 20

# Turns one successful response into its events; the float is the request's deadline.
Decode = Callable[[aiohttp.ClientResponse, float], AsyncGenerator[ImageEvent, None]]


class RelayConnectionError(ServerError):
    """The connection to the relay failed or broke mid-answer (retried like a 5xx)."""

    user_message = tr("The connection to the image service broke. Please try again later.")


class _Retry(Exception):
    """Internal: the attempt failed before any image and may be retried."""

    def __init__(self, error: SeedreamError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    budget: float = 120.0
    backoff_base: float = 1.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Jittered exponential backoff, never shorter than the relay's Retry-After."""
        delay: float = self.backoff_base * 2**attempt * random.uniform(0.5, 1.5)
        return delay if retry_after is None else max(delay, retry_after)


@dataclass
class _Progress:
    events: int = 0
    next_index: int = 0


class RelayTransport:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        api_key: str,
        stream: bool,
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        self._session = session
        self._endpoint = endpoint
        self._api_key = api_key
        self._secrets = (api_key,) if api_key else ()
        self._stream = stream
        self._timeout = timeout
        self._retry = retry

    def __repr__(self) -> str:  # never show the key
        return f"RelayTransport(endpoint={self._endpoint!r})"

    async def post(self, payload: dict[str, object], decode: Decode) -> AsyncGenerator[ImageEvent, None]:
        """POST `payload`, yielding the decoded events; retries only before the first one."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout
        attempt = 0
        while True:
            try:
                async with contextlib.aclosing(self._attempt(payload, deadline, decode)) as events:
                    async for event in events:
                        yield event
                return
            except _Retry as retry:
                error = retry.error
                if attempt >= self._retry.max_retries:
                    raise error from None
                delay = self._retry.delay(attempt, retry.retry_after)
                now = loop.time()
                if now - started + delay > self._retry.budget or now + delay >= deadline:
                    log.warning("relay error %s; next retry in %.1fs would exceed the budget", error, delay)
                    raise error from None
                log.warning("relay error %s; retry %d in %.2fs", error, attempt + 1, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(
        self, payload: dict[str, object], deadline: float, decode: Decode
    ) -> AsyncGenerator[ImageEvent, None]:
        """One HTTP request. Raises _Retry or a final SeedreamError only before any image."""
        progress = _Progress()
        retry_after: float | None = None
        try:
            async with contextlib.aclosing(self._send(payload, deadline, decode, progress)) as events:
                async for event in events:
                    yield event
            return
        except TimeoutError:
            error: SeedreamError = RelayTimeout()
        except CONNECTION_ERRORS as exc:
            log.warning("relay connection failed: %s", redact(repr(exc), self._secrets))
            error = RelayConnectionError()
        except _Retry as retry:
            error, retry_after = retry.error, retry.retry_after
        except SeedreamError as failure:
            error = failure
        if progress.events:
            yield ImageFailure(progress.next_index, error)
            return
        raise _maybe_retry(error, retry_after)

    async def _send(
        self, payload: dict[str, object], deadline: float, decode: Decode, progress: _Progress
    ) -> AsyncGenerator[ImageEvent, None]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "text/event-stream, application/json" if self._stream else "application/json",
        }
        timeout = aiohttp.ClientTimeout(total=remaining(deadline))
        async with self._session.post(self._endpoint, json=payload, headers=headers, timeout=timeout) as resp:
            if not 200 <= resp.status < 300:
                body = await read_capped(resp, ERROR_BODY_LIMIT)
                failure = classify_response(resp.status, body, dict(resp.headers), secrets=self._secrets)
                log.warning("relay answered HTTP %d: %s", resp.status, failure)
                raise _maybe_retry(failure, retry_after_from_headers(dict(resp.headers)))
            async with contextlib.aclosing(decode(resp, deadline)) as events:
                async for event in events:
                    progress.next_index = max(progress.next_index, event.index + 1)
                    progress.events += 1
                    yield event
            if progress.events == 0:
                raise MalformedResponse("The image service finished without returning any image.")


def _maybe_retry(error: SeedreamError, retry_after: float | None) -> Exception:
    """Throttling and server errors are retried (4xx and timeouts never are)."""
    if isinstance(error, (RateLimited, ServerError)):
        if isinstance(error, RateLimited) and error.retry_after is not None:
            retry_after = error.retry_after
        return _Retry(error, retry_after)
    return error
