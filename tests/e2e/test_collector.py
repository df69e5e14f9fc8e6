"""While the bot runs, what start-up built is frozen out of the garbage collector and the young
generation is large (a burst's jobs would otherwise trigger full collections); closing the bot
puts both back, for a process that starts another."""

from __future__ import annotations

import gc

from bot.app import GC_THRESHOLD
from tests.e2e.conftest import BotStarter


async def test_the_collector_is_tuned_while_the_bot_runs_and_restored_after(boot: BotStarter) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLD
    async with boot():
        assert gc.get_threshold() == GC_THRESHOLD
        assert gc.get_freeze_count() > 10_000  # modules, classes, tables, commands
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
