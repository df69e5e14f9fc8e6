"""Clicks this process is still working on, so a double click is refused at once.

A result button's job is deduplicated in the database (its dedupe key, while the job is active),
but that check runs only once the job is stored, after the click has shown a public "thinking…".
Claiming the same key when the click arrives lets a second click be refused privately first.
The database check stays the guarantee across processes and restarts.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Claims:
    def __init__(self) -> None:
        self._keys: set[str] = set()

    def take(self, key: str) -> bool:
        """Claim `key`; False when it is claimed already."""
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def release(self, key: str, job: asyncio.Future[Any] | None) -> None:
        """Free `key` now (no job started) or once `job` has ended."""
        if job is None or job.done():
            self._keys.discard(key)
        else:
            job.add_done_callback(lambda _: self._keys.discard(key))
