"""A process-wide budget of decoded pixels, shared by every Pillow decode in the bot.

A solid-colour 36 MP PNG is 148 KiB on disk and about 139 MiB decoded, so the number of
images decoded at once is bounded by their pixels, not their bytes. A decode bigger than the
whole budget still runs, alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# About 144 MiB of RGB: one 36 MP reference, or two of Seedream's 16.8 MP 4K results, at once.
DECODE_BUDGET_PIXELS = 48_000_000


class PixelBudget:
    def __init__(self, pixels: int) -> None:
        self._total = pixels
        self._free = pixels
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Block (in a worker thread) until `pixels` may be decoded, and hold them meanwhile."""
        wanted = max(1, min(pixels, self._total))
        with self._changed:
            self._changed.wait_for(lambda: self._free >= wanted)
            self._free -= wanted
        try:
            yield
        finally:
            with self._changed:
                self._free += wanted
                self._changed.notify_all()


DECODE_BUDGET = PixelBudget(DECODE_BUDGET_PIXELS)
