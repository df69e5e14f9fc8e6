"""While the bot runs, what start-up built is frozen out of the garbage collector, the young
generation is large (a burst's jobs would otherwise trigger full collections) and a thread hands
the GIL back within 1 ms (image fitting in threads would otherwise hold up the event loop);
closing the bot puts all of it back, for a process that starts another."""

from __future__ import annotations

import gc
import sys

from bot.ops.interpreter import GC_THRESHOLD, SWITCH_INTERVAL
from tests.e2e.conftest import BotStarter


async def test_the_interpreter_is_tuned_while_the_bot_runs_and_restored_after(boot: BotStarter) -> None:
    before = (gc.get_threshold(), sys.getswitchinterval())
    assert before != (GC_THRESHOLD, SWITCH_INTERVAL)
    async with boot():
        assert (gc.get_threshold(), sys.getswitchinterval()) == (GC_THRESHOLD, SWITCH_INTERVAL)
        assert gc.get_freeze_count() > 10_000  # modules, classes, tables, commands
    assert (gc.get_threshold(), sys.getswitchinterval()) == before
    assert gc.get_freeze_count() == 0
