"""Drive many concurrent /imagine through the fakes and print the figures that matter.

    .venv/bin/python -m bench.imagine_load [--requests 100] [--relay-latency 2.0] [--concurrency 100]
                                           [--database-url postgresql://...]

Prints acknowledgement latency (dispatch to the bot's defer reaching Discord; p50/p99), the
makespan (first dispatch to last summary) divided by the relay's latency, and peak memory.
Targets: 100 requests with a 2 s relay acknowledge within 300 ms p99 and finish within 1.2x
of 2 s when RELAY_CONCURRENCY allows them all. The fake Discord and the fake relay share the
bot's process and event loop, so the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bot.app import create_bot
from tests.fakes.fake_relay import FakeRelay
from tests.harness import running_fake, start_bot


class PeakMemory:
    """Samples this process's RSS in a thread (the event loop is busy being measured)."""

    def __init__(self, every: float = 0.02) -> None:
        self._process = psutil.Process()
        self._every = every
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(requests: int, relay_latency: float, concurrency: int, database_url: str | None = None) -> None:
    async with FakeRelay() as relay, running_fake() as fake:
        relay.latency = relay_latency
        users = []
        for n in range(requests):
            user = fake.add_user(f"member{n}")
            fake.add_member(fake.guild, user)
            users.append(user)
        with tempfile.TemporaryDirectory() as scratch:
            async with start_bot(
                fake, create_bot,
                image_api_base_url=relay.base_url, image_api_key=relay.api_key,
                database_url=database_url or f"sqlite:///{Path(scratch) / 'bench.db'}",
                relay_concurrency=concurrency, quota_default_limit=None, log_level="WARNING",
            ):
                baseline = psutil.Process().memory_info().rss
                with PeakMemory() as memory:
                    started = time.monotonic()
                    interactions = await asyncio.gather(
                        *(fake.slash("imagine", {"prompt": f"benchmark {n}"}, user=user)
                          for n, user in enumerate(users))
                    )

                    def all_done() -> bool:
                        return all(
                            any(m.content.startswith(("✅", "❌")) for m in i.messages) for i in interactions
                        )

                    await fake.wait_for(all_done, timeout=120, what="every job to finish")
                    makespan = time.monotonic() - started
                acks = [(i.callback.at - i.dispatched_at) * 1000 for i in interactions if i.callback]
                failed = sum(any(m.content.startswith("❌") for m in i.messages) for i in interactions)

    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"requests                 {requests} (relay latency {relay_latency:.1f} s, "
          f"RELAY_CONCURRENCY={concurrency}, {backend})")
    print(f"acknowledged             {len(acks)}/{requests}, failed jobs {failed}")
    print(f"ack latency p50 / p99    {statistics.median(acks):.1f} ms / {percentile(acks, 0.99):.1f} ms")
    print(f"makespan                 {makespan:.2f} s = {makespan / relay_latency:.2f} x relay latency")
    print(f"peak memory              {memory.peak / 2**20:.0f} MiB "
          f"(+{(memory.peak - baseline) / 2**20:.0f} MiB during the run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--relay-latency", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/test (default: SQLite)")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.relay_latency, args.concurrency, args.database_url))


if __name__ == "__main__":
    main()
