"""What a job tells its requester while it runs, and how often."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """A progress report: `state` is "queued" (with `position`, 1-based) or "generating";
    `resumed` when the job picks up again after a restart."""

    state: str
    position: int = 0
    done: int = 0
    total: int = 0
    resumed: bool = False


class ProgressThrottle:
    """Lets a state change through at once, and repeats of one state at most every `interval` s."""

    def __init__(self, interval: float = 1.5) -> None:
        self._interval = interval
        self._last: tuple[str, float] | None = None

    def allow(self, progress: Progress) -> bool:
        now = time.monotonic()
        if self._last is not None and self._last[0] == progress.state and now - self._last[1] < self._interval:
            return False
        self._last = (progress.state, now)
        return True
