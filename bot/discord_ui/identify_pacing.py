"""Pace gateway IDENTIFYs by Discord's session start limit instead of discord.py's flat 5 s.

Discord lets a bot start `max_concurrency` sessions per 5 seconds, one in each bucket
`shard_id % max_concurrency` (gateway.mdx "Session Start Limit"). discord.py's default hook
waits 5 s before every IDENTIFY but a process's first, so a process running 16 shards of a
bot allowed 16 at once would take 75 s to connect; this waits only when the shard's bucket
identified less than 5 s ago.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

IDENTIFY_WINDOW_SECONDS = 5.0


class SessionStartLimit(Protocol):
    max_concurrency: int


class IdentifyPacer:
    """One per process; `wait(shard_id)` returns when that shard may IDENTIFY."""

    def __init__(self, fetch_limit: Callable[[], Awaitable[SessionStartLimit]], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._fetch = fetch_limit
        self._clock = clock
        self._sleep = sleep
        self._max_concurrency: int | None = None
        self._next_start: dict[int, float] = {}
        self._lock = asyncio.Lock()

    async def _concurrency(self) -> int:
        if self._max_concurrency is None:
            try:
                self._max_concurrency = max(1, (await self._fetch()).max_concurrency)
            except Exception:  # no limit to read: pace as Discord's smallest allowance
                log.warning("could not read the session start limit; identifying one shard per 5 s",
                            exc_info=True)
                self._max_concurrency = 1
        return self._max_concurrency

    async def wait(self, shard_id: int | None) -> None:
        async with self._lock:  # reserve the bucket's next slot; sleep outside the lock
            bucket = (shard_id or 0) % await self._concurrency()
            now = self._clock()
            start = max(now, self._next_start.get(bucket, now))
            self._next_start[bucket] = start + IDENTIFY_WINDOW_SECONDS
        if start > now:
            await self._sleep(start - now)  # Discord's rate limit, not synchronisation
