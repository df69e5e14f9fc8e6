"""IDENTIFYs are paced by Discord's session start limit: max_concurrency buckets, one per 5 s each."""

from __future__ import annotations

from dataclasses import dataclass

from bot.discord_ui.identify_pacing import IdentifyPacer


@dataclass
class Limit:
    max_concurrency: int


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def pacer(max_concurrency: int, clock: ManualClock) -> IdentifyPacer:
    async def fetch() -> Limit:
        return Limit(max_concurrency)

    return IdentifyPacer(fetch, clock=clock, sleep=clock.sleep)


async def test_shards_in_distinct_buckets_identify_at_once_and_a_full_bucket_waits_out_its_window() -> None:
    clock = ManualClock()
    paced = pacer(2, clock)
    for shard in (0, 1, 2, 3):
        await paced.wait(shard)
    assert clock.slept == [5.0]  # shard 2 shares shard 0's bucket; shard 3 then finds bucket 1 free


async def test_with_the_smallest_limit_each_identify_after_the_first_waits_five_seconds() -> None:
    clock = ManualClock()
    paced = pacer(1, clock)
    for shard in (0, 1, 2):
        await paced.wait(shard)
    assert clock.slept == [5.0, 5.0]


async def test_a_reidentify_long_after_the_last_one_does_not_wait() -> None:
    clock = ManualClock()
    paced = pacer(1, clock)
    await paced.wait(0)
    clock.now += 60
    await paced.wait(0)
    assert clock.slept == []


async def test_an_unreadable_limit_falls_back_to_one_identify_per_five_seconds() -> None:
    clock = ManualClock()

    async def broken() -> Limit:
        raise OSError("gateway unreachable")

    paced = IdentifyPacer(broken, clock=clock, sleep=clock.sleep)
    await paced.wait(0)
    await paced.wait(1)
    assert clock.slept == [5.0]
