"""Process-wide interpreter settings for a long-running bot: the garbage collector and how soon
a thread holding the GIL hands it back. `tune()` at the end of start-up, `restore()` at close."""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass

# The young generation once start-up is frozen: 50,000 objects instead of 700. With the default a
# burst of 1,000 jobs ran 3-4 full collections of 64-144 ms each (every job in flight is young
# and survives); with this, none, and a third of the collector's CPU.
GC_THRESHOLD = (50_000, 20, 20)
# Seconds a thread may hold the GIL while another waits for it (Python's default: 5 ms). Image
# fitting runs in worker threads; with the default the event loop waited 46-98 ms for the GIL
# while a 15-image 4K set was fitted, with 1 ms 23-35 ms (bench/set_fitting.py).
SWITCH_INTERVAL = 0.001


@dataclass(frozen=True)
class Previous:
    gc_threshold: tuple[int, int, int]
    switch_interval: float


def tune() -> Previous:
    """Freeze what start-up built (modules, tables, compiled statements, commands: it lives as
    long as the process, and full collections would walk all of it again each time), then set
    the collector's threshold and the switch interval. Returns what was there before."""
    previous = Previous(gc.get_threshold(), sys.getswitchinterval())
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL)
    return previous


def restore(previous: Previous) -> None:
    """Undo `tune()`: what it froze may be garbage now (a process that starts another bot)."""
    gc.unfreeze()
    gc.set_threshold(*previous.gc_threshold)
    sys.setswitchinterval(previous.switch_interval)
