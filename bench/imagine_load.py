"""Drive many concurrent /imagine through the fakes and print the figures that matter.

    .venv/bin/python -m bench.imagine_load [--requests 100] [--relay-latency 2.0] [--concurrency 100]
                                           [--database-url postgresql://...] [--in-process]

The bot runs as its own process (`python -m bot`, as in production) against a fake Discord and a
fake relay served from this process. Prints acknowledgement latency (dispatch of the interaction
to the bot's defer reaching Discord; p50/p99), the makespan (first dispatch to the last job's
summary) divided by the relay's latency, how long after its command each relay call started, the
bot's CPU time per job (start-up excluded) and its peak memory. Targets: 100 requests with a
2 s relay acknowledge within 300 ms p99 and finish within 1.2x of 2 s when RELAY_CONCURRENCY
allows them all. `--in-process` runs the bot in this process instead (pessimistic: the fakes
then share its event loop and core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil

from bot.app import create_bot
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, running_fake, start_bot

ROOT = Path(__file__).resolve().parents[1]


class PeakMemory:
    """Samples this process's RSS in a thread (the event loop is busy being measured)."""

    def __init__(self, pid: int | None = None, every: float = 0.02) -> None:
        self._process = psutil.Process(pid)
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


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def bot_process(fake: StandardDiscord, settings: dict[str, str]) -> AsyncIterator[int]:
    """`python -m bot` pointed at the fakes; yields its pid once it has its guilds and commands."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **fake.env(),
           **{name.upper(): value for name, value in settings.items()}}
    process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=env)  # noqa: ASYNC220
    try:
        await fake.wait_until_connected(timeout=30)
        await fake.wait_for(lambda: bool(fake.commands), 30, what="the bot to sync its commands")
        await asyncio.sleep(0.5)  # let the bot finish processing GUILD_CREATE
        yield process.pid
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


@contextlib.asynccontextmanager
async def bot_in_this_process(fake: StandardDiscord, settings: dict[str, str]) -> AsyncIterator[int]:
    async with start_bot(fake, create_bot, **settings):
        yield os.getpid()


async def run(requests: int, relay_latency: float, concurrency: int, database_url: str | None,
              in_process: bool) -> None:
    async with FakeRelay() as relay, running_fake() as fake:
        relay.latency = relay_latency
        users = []
        for n in range(requests):
            user = fake.add_user(f"member{n}")
            fake.add_member(fake.guild, user)
            users.append(user)
        with tempfile.TemporaryDirectory() as scratch:
            settings = {
                "image_api_base_url": relay.base_url, "image_api_key": relay.api_key,
                "database_url": database_url or f"sqlite:///{Path(scratch) / 'bench.db'}",
                "relay_concurrency": str(concurrency), "quota_default_limit": "none", "log_level": "WARNING",
                "sync_commands": "true",  # a new fake Discord each run, whatever the database remembers
            }
            launcher = bot_in_this_process if in_process else bot_process
            async with launcher(fake, settings) as pid:
                bot = psutil.Process(pid)
                baseline = bot.memory_info().rss
                cpu_before = cpu_seconds(bot)
                with PeakMemory(pid) as memory:
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
                cpu_used = cpu_seconds(bot) - cpu_before
                acks = [(i.callback.at - i.dispatched_at) * 1000 for i in interactions if i.callback]
                failed = sum(any(m.content.startswith("❌") for m in i.messages) for i in interactions)
                arrived = {r.body["prompt"]: r.at for r in relay.requests if isinstance(r.body, dict)}
                relay_starts = [(arrived[f"benchmark {n}"] - i.dispatched_at) * 1000
                                for n, i in enumerate(interactions) if f"benchmark {n}" in arrived]

    backend = "PostgreSQL" if database_url else "SQLite"
    where = "in the benchmark's process" if in_process else "in its own process"
    print(f"requests                 {requests} (relay latency {relay_latency:.1f} s, "
          f"RELAY_CONCURRENCY={concurrency}, {backend}, bot {where})")
    print(f"acknowledged             {len(acks)}/{requests}, failed jobs {failed}")
    print(f"ack latency p50 / p99    {statistics.median(acks):.1f} ms / {percentile(acks, 0.99):.1f} ms")
    print(f"makespan                 {makespan:.2f} s = {makespan / relay_latency:.2f} x relay latency")
    print(f"relay call after command p50 / max {statistics.median(relay_starts):.0f} ms / "
          f"{max(relay_starts):.0f} ms")
    print(f"bot CPU per job          {cpu_used / requests * 1000:.1f} ms"
          + (" (includes the fakes: --in-process)" if in_process else ""))
    print(f"bot peak memory          {memory.peak / 2**20:.0f} MiB "
          f"(+{(memory.peak - baseline) / 2**20:.0f} MiB during the run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--relay-latency", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/test (default: SQLite)")
    parser.add_argument("--in-process", action="store_true", help="run the bot in this process")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.relay_latency, args.concurrency, args.database_url, args.in_process))


if __name__ == "__main__":
    main()
