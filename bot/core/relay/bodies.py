"""Reading relay response bodies: connection errors, deadlines, size caps, parsing off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import aiohttp

from bot.core.relay.errors import SeedreamError

_T = TypeVar("_T")
_R = TypeVar("_R")

THREAD_THRESHOLD = 256 * 1024  # decode/parse bigger payloads off the event loop
DOWNLOAD_CHUNK = 64 * 1024

CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


def remaining(deadline: float) -> float:
    """Seconds left until `deadline` (loop time); TimeoutError once it has passed."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise TimeoutError
    return left


async def read_capped(
    resp: aiohttp.ClientResponse, limit: int, too_large: Callable[[], SeedreamError] | None = None
) -> bytes:
    """Read a body in chunks, stopping as soon as it passes `limit` bytes.

    With `too_large` the read is aborted and its error raised; without it the body is truncated.
    """
    parts: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK):
        total += len(chunk)
        if total > limit:
            if too_large is None:
                parts.append(chunk[: max(0, limit - (total - len(chunk)))])
                resp.release()
                break
            resp.close()
            raise too_large()
        parts.append(chunk)
    return b"".join(parts)


async def off_loop(func: Callable[[_T], _R], value: _T, size: int) -> _R:
    """Run CPU-heavy parsing in a thread when the input is big enough to stall the loop."""
    if size > THREAD_THRESHOLD:
        return await asyncio.to_thread(func, value)
    return func(value)
