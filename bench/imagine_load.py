"""Drive bursts of concurrent /imagine through the fakes and print the figures that matter.

    .venv/bin/python -m bench.imagine_load [--requests 100] [--bursts 1] [--relay-latency 2.0]
        [--concurrency N] [--database-url postgresql://... | --fresh-postgres] [--shards 2] [--profile]
        [--in-process]

The bot runs as its own process (`python -m bot`, as in production; `--shards 2` runs two shard
processes on one PostgreSQL, each with its own guild and half the members) against a fake Discord
and a fake relay served from this process. Every burst sends `--requests` commands at once from
different members and waits until each job has posted its summary. Per burst it prints:

- acknowledgement latency: dispatch of the interaction to the bot's defer reaching Discord
  (p50 / p99 / max; Discord's deadline is 3 s), and the same from the moment the fake's gateway
  writer handed the interaction's frame to the socket: in a big burst the fake queues every
  interaction at once and sends them one by one beside its other work, so the first figure
  includes the fake's own queue, the second leaves it out (and is the lower bound);
- the makespan (first dispatch to the last job's summary) against the relay's latency;
- how long after its command each relay call started (p50 / p99 / max);
- the bot's CPU time per job (every bot process, start-up excluded), Discord REST calls and
  database statements per job (from the bot's own `/metrics` counters), and peak RSS.

`--fresh-postgres` runs on a new PostgreSQL database (on TEST_POSTGRES_URL's server), dropped
afterwards: a database that keeps every run's rows makes later runs slower. `--profile` attaches
py-spy to the (first) bot process for the last burst and prints where its CPU went.
`--in-process` runs the bot in this process instead (pessimistic: the fakes then share
its event loop and core; no metrics endpoint, no profile). Targets live in the performance issue
and README; this script asserts none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
import psutil

from bench.pyspy import Profile
from bot.storage.database import Database
from tests.fakes.discord_state import Channel, FakeInteraction, User
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, running_fake
from tests.procs import BotProcess, fresh_postgres_database

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
METRIC_LINE = re.compile(r"^(?P<name>seedream_[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


class PeakMemory:
    """Samples the summed RSS of some processes in a thread (the event loop is busy being measured)."""

    def __init__(self, pids: Sequence[int], every: float = 0.02) -> None:
        self._processes = [psutil.Process(pid) for pid in pids]
        self._every = every
        self._stop = threading.Event()
        self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return sum(process.memory_info().rss for process in self._processes)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def read_counters(session: aiohttp.ClientSession, ports: Sequence[int]) -> dict[str, float]:
    """`seedream_database_statements_total` and `seedream_discord_requests_total` summed over ports."""
    totals = {"statements": 0.0, "discord": 0.0}
    for port in ports:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        for match in METRIC_LINE.finditer(text):
            if match["name"] == "seedream_database_statements_total":
                totals["statements"] += float(match["value"])
            elif match["name"] == "seedream_discord_requests_total":
                totals["discord"] += float(match["value"])
    return totals


@dataclass
class Burst:
    requests: int
    relay_latency: float
    acks: list[float] = field(default_factory=list)
    acks_after_send: list[float] = field(default_factory=list)
    relay_starts: list[float] = field(default_factory=list)
    makespan: float = 0.0
    failed: int = 0
    cpu: float = 0.0
    statements: float | None = None
    discord_calls: float | None = None
    peak_rss: int = 0

    def report(self, label: str) -> str:
        n = self.requests
        lines = [
            f"{label}: {n} jobs, {len(self.acks)} acknowledged, {self.failed} failed",
            f"  ack latency p50 / p99 / max   {statistics.median(self.acks):.0f} / "
            f"{percentile(self.acks, 0.99):.0f} / {max(self.acks):.0f} ms",
            f"    after the frame left the fake {statistics.median(self.acks_after_send):.0f} / "
            f"{percentile(self.acks_after_send, 0.99):.0f} / {max(self.acks_after_send):.0f} ms",
            f"  makespan                      {self.makespan:.2f} s = {self.makespan / self.relay_latency:.2f}"
            " x relay latency",
            f"  relay call after command      {statistics.median(self.relay_starts):.0f} / "
            f"{percentile(self.relay_starts, 0.99):.0f} / {max(self.relay_starts):.0f} ms (p50 / p99 / max)",
            f"  bot CPU per job               {self.cpu / n * 1000:.2f} ms",
        ]
        if self.statements is not None and self.discord_calls is not None:
            lines.append(f"  per job                       {self.discord_calls / n:.2f} Discord calls, "
                         f"{self.statements / n:.2f} database statements")
        lines.append(f"  bot peak memory               {self.peak_rss / 2**20:.0f} MiB")
        return "\n".join(lines)


@dataclass
class Bench:
    fake: StandardDiscord
    relay: FakeRelay
    members: list[tuple[User, Channel]]
    pids: list[int]
    metrics_ports: list[int]

    async def burst(self, number: int, profile: bool) -> Burst:
        result = Burst(len(self.members), self.relay.latency)
        self.relay.requests.clear()
        async with aiohttp.ClientSession() as session:
            before = await read_counters(session, self.metrics_ports) if self.metrics_ports else None
            cpu_before = cpu_seconds(self.pids)
            with PeakMemory(self.pids) as memory, \
                    (Profile(self.pids[0]) if profile else contextlib.nullcontext()) as profiler:
                started = time.monotonic()
                interactions = await asyncio.gather(*(
                    self.fake.slash("imagine", {"prompt": f"burst {number} job {n}"}, user=user, channel=channel)
                    for n, (user, channel) in enumerate(self.members)))
                await self.fake.wait_for(every_one(summarised, interactions), timeout=600,
                                         what="every job to post its summary")
                result.makespan = time.monotonic() - started
            result.cpu = cpu_seconds(self.pids) - cpu_before
            result.peak_rss = memory.peak
            if before is not None:
                after = await read_counters(session, self.metrics_ports)
                result.statements = after["statements"] - before["statements"]
                result.discord_calls = after["discord"] - before["discord"]
        result.acks = [(i.callback.at - i.dispatched_at) * 1000 for i in interactions if i.callback]
        result.acks_after_send = [(i.callback.at - i.sent_at) * 1000 for i in interactions
                                  if i.callback and i.sent_at is not None]
        result.failed = sum(any(m.content.startswith("❌") for m in i.messages) for i in interactions)
        arrived = {r.body["prompt"]: r.at for r in self.relay.requests if isinstance(r.body, dict)}
        result.relay_starts = [(arrived[f"burst {number} job {n}"] - i.dispatched_at) * 1000
                               for n, i in enumerate(interactions) if f"burst {number} job {n}" in arrived]
        if isinstance(profiler, Profile):
            print(profiler.summary())
        return result


def every_one(holds: Callable[[T], bool], items: Sequence[T]) -> Callable[[], bool]:
    """A predicate for `wait_for`: true once `holds` is true of every item, and true of each for
    good. It skips the items already seen to hold, so waiting on a burst is not quadratic."""
    seen = 0

    def predicate() -> bool:
        nonlocal seen
        while seen < len(items) and holds(items[seen]):
            seen += 1
        return seen == len(items)

    return predicate


def summarised(interaction: FakeInteraction) -> bool:
    return any(m.content.startswith(("✅", "❌")) for m in interaction.messages)


def bot_settings(database_url: str, concurrency: int) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url, "RELAY_CONCURRENCY": str(concurrency), "QUOTA_DEFAULT_LIMIT": "none",
        "LOG_LEVEL": "WARNING", "RELAY_MAX_RETRIES": "2",
        "SYNC_COMMANDS": "true",  # a new fake Discord each run, whatever the database remembers
    }


@contextlib.asynccontextmanager
async def bot_processes(fake: StandardDiscord, relay: FakeRelay, requests: int, shards: int,
                        settings: dict[str, str]) -> AsyncIterator[Bench]:
    """`shards` bot processes (SHARD_IDS i of SHARD_COUNT shards), each with its guild and members."""
    members: list[tuple[User, Channel]] = []
    processes: list[BotProcess] = []
    ports: list[int] = []
    for shard in range(shards):
        if shards == 1:
            guild, channel = fake.guild, fake.general
        else:
            guild = fake.add_guild(f"Shard {shard} guild", owner=fake.owner, shard=(shard, shards))
            channel = fake.add_channel(guild, "art")
            fake.add_member(guild, fake.owner)
        for n in range(shard, requests, shards):
            user = fake.add_user(f"member{n}")
            fake.add_member(guild, user)
            members.append((user, channel))
        ports.append(free_port())
        env = {**settings, "METRICS_PORT": str(ports[-1]), "LOG_LEVEL": "WARNING"}
        if shards > 1:
            env |= {"SHARD_COUNT": str(shards), "SHARD_IDS": str(shard)}
        processes.append(BotProcess(fake, relay, database_url=settings["DATABASE_URL"], env=env))
    try:
        await asyncio.gather(*(process.start() for process in processes))
        await fake.wait_for(lambda: bool(fake.commands), 30, what="the bot to sync its commands")
        await asyncio.sleep(1.0)  # let the bots finish processing GUILD_CREATE
        yield Bench(fake, relay, members, [p.pid for p in processes if p.pid], ports)
    finally:
        await asyncio.gather(*(process.terminate() for process in processes if process.running))


@contextlib.asynccontextmanager
async def bot_in_this_process(fake: StandardDiscord, relay: FakeRelay, requests: int,
                              settings: dict[str, str]) -> AsyncIterator[Bench]:
    import os

    from bot.app import create_bot
    from tests.harness import start_bot

    members = []
    for n in range(requests):
        user = fake.add_user(f"member{n}")
        fake.add_member(fake.guild, user)
        members.append((user, fake.general))
    async with start_bot(fake, create_bot, **{name.lower(): value for name, value in settings.items()},
                         image_api_base_url=relay.base_url, image_api_key=relay.api_key):
        yield Bench(fake, relay, members, [os.getpid()], [])


async def run(args: argparse.Namespace) -> None:
    if args.shards > 1 and not (args.database_url or args.fresh_postgres):
        raise SystemExit("--shards needs a shared PostgreSQL: pass --database-url postgresql://... or --fresh-postgres")
    async with contextlib.AsyncExitStack() as stack:
        database_url = args.database_url
        if args.fresh_postgres:
            database_url = await stack.enter_async_context(fresh_postgres_database())
        await run_on(args, database_url)


async def run_on(args: argparse.Namespace, database_url: str | None) -> None:
    async with FakeRelay() as relay, running_fake() as fake:
        relay.latency = args.relay_latency
        with tempfile.TemporaryDirectory() as scratch:
            url = database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
            # The schema in place, as on every start but a database's first (which also loads
            # alembic: about 11 MiB more in the bot process).
            database = Database(url)
            await database.migrate()
            await database.close()
            settings = bot_settings(url, args.concurrency or args.requests)
            launcher = (bot_in_this_process(fake, relay, args.requests, settings) if args.in_process
                        else bot_processes(fake, relay, args.requests, args.shards, settings))
            backend = "PostgreSQL" if database_url else "SQLite"
            where = ("in the benchmark's process (CPU includes the fakes)" if args.in_process
                     else f"{args.shards} bot process{'es' if args.shards > 1 else ''}")
            print(f"{args.requests} requests x {args.bursts} burst(s), relay latency {args.relay_latency:.1f} s, "
                  f"RELAY_CONCURRENCY={settings['RELAY_CONCURRENCY']}, {backend}, {where}", flush=True)
            async with launcher as bench:
                first_rss = None
                for number in range(1, args.bursts + 1):
                    profile = args.profile and number == args.bursts and not args.in_process
                    burst = await bench.burst(number, profile)
                    print(burst.report(f"burst {number}"), flush=True)
                    first_rss = first_rss or burst.peak_rss
                if args.bursts > 1 and first_rss:
                    print(f"peak memory, last burst against the first: "
                          f"{(burst.peak_rss - first_rss) / 2**20:+.0f} MiB")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="commands per burst, all at once")
    parser.add_argument("--bursts", type=int, default=1, help="consecutive bursts (memory growth)")
    parser.add_argument("--relay-latency", type=float, default=2.0, help="seconds the fake relay takes")
    parser.add_argument("--concurrency", type=int, help="RELAY_CONCURRENCY (default: --requests)")
    parser.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/test (default: SQLite)")
    parser.add_argument("--fresh-postgres", action="store_true",
                        help="a new PostgreSQL database on TEST_POSTGRES_URL's server, dropped afterwards "
                             "(runs compare better than on one that keeps every run's rows)")
    parser.add_argument("--shards", type=int, default=1, help="bot processes, one shard each (PostgreSQL)")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of the last burst")
    parser.add_argument("--in-process", action="store_true", help="run the bot in this process")
    return parser.parse_args(argv)


def main() -> None:
    asyncio.run(run(parse()))


if __name__ == "__main__":
    main()
