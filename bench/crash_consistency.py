"""Crash consistency: many /imagine jobs, relay and Discord faults, and kill -9 at random moments.

    .venv/bin/python -m bench.crash_consistency [--jobs 300] [--kills 5] [--faults 0.2]
                                                [--backend sqlite|postgresql] [--seed N]

The bot runs as one real `python -m bot` process (tests/procs.py) against the in-process fake
Discord and fake relay, on a fresh SQLite file or a fresh PostgreSQL database. Jobs (one image
or a set of 2-4) are submitted at a steady pace by several members; before about `--faults`
of them one fault is scripted: a relay 5xx or a dropped relay stream, a Discord 5xx or 429 on
a follow-up or on the reply's edit. The process is killed with SIGKILL at `--kills` seeded
random moments and started again at once. Once every job has ended it prints what the members
saw in Discord against what the database says, and exits non-zero on a duplicate image, a lost
image (recorded as delivered but not visible, or a job that never finished) or a charge that is
not the images delivered.

Kills never fall between an interaction's dispatch and its job row being stored (the bot
defers first, then stores the job), unless `--kill-anywhere`: then a reply deferred by a process
that died before storing its job is counted as "never stored" (it stays "thinking…"). A job the
relay failed is "failed", a set cut short (by the relay, or by JOB_MAX_ATTEMPTS after kills) is
"partial"; both must be charged only what was delivered. `--fault-kinds "answer lost"` scripts
follow-ups that land but are answered 500 (posted twice today: discord.py retries them itself).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from bot.core.jobs.naming import image_index
from bot.core.jobs.spec import StoredRequest
from bot.storage.database import Database
from bot.storage.quota_ledger import LedgerKind
from bot.storage.tables import jobs, quota_ledger, quota_reservations
from tests.fakes.discord_state import FakeInteraction, User
from tests.fakes.fake_relay import FakeRelay, ark_error
from tests.harness import StandardDiscord, running_fake
from tests.procs import BotProcess, fresh_postgres_database

PROMPT = "crash bench job {n}"
SURVIVABLE = ("relay 5xx", "relay dropped", "discord 5xx", "discord 429", "edit 5xx")
# A follow-up that lands but whose answer is a 500: discord.py retries it itself, before the
# runner can look for the earlier post, so today it is posted twice (tests/processes/test_crash_bench.py).
FAULTS = (*SURVIVABLE, "answer lost")
FINAL = ("✅", "❌")


@dataclass
class Options:
    jobs: int = 300
    kills: int = 5
    faults: float = 0.2
    backend: str = "sqlite"
    seed: int = 8
    members: int = 12
    pace: float = 0.05  # seconds between submissions
    timeout: float = 900.0  # for every job to end, after the last submission
    quiet: bool = False
    log: str | None = None  # copy the bot's log here
    bot_env: list[str] = field(default_factory=list)  # NAME=value settings for the bot process
    fault_kinds: str = ",".join(SURVIVABLE)
    kill_anywhere: bool = False  # also between an interaction's dispatch and its job row


@dataclass
class Figures:
    submitted: int = 0
    stored: int = 0
    exactly_once: int = 0
    partial: int = 0
    failed: int = 0
    duplicates: int = 0
    lost: int = 0
    ledger_difference: int = 0
    unsummarised: int = 0
    unanswered: int = 0  # the process died before it acknowledged the interaction: no job
    unstored: int = 0  # acknowledged, then the process died before it stored the job
    reservations_left: int = 0
    relay_calls: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    wall: float = 0.0
    problems: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)  # the bot's log, over every start

    @property
    def consistent(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.ledger_difference == 0

    def report(self, backend: str) -> str:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items())) or "none"
        lines = [
            f"backend                       {backend}",
            f"jobs submitted                {self.submitted} (job rows stored {self.stored})",
            f"faults injected               {sum(self.faults.values())} ({faults})",
            f"SIGKILLs (restarted at once)  {self.kills}",
            f"relay calls                   {self.relay_calls}",
            f"delivered exactly once        {self.exactly_once}",
            f"partial (the rest refunded)   {self.partial}",
            f"failed (refunded)             {self.failed}",
            f"duplicates                    {self.duplicates}",
            f"lost images                   {self.lost}",
            f"ledger minus images delivered {self.ledger_difference}",
            f"reservations still held       {self.reservations_left}",
            f"replies without a summary     {self.unsummarised}",
            *([f"  of which never stored        {self.unstored} (acknowledged, the process died before the job row)",
               f"never acknowledged (no job)   {self.unanswered}"] if self.unanswered or self.unstored else []),
            f"wall time                     {self.wall:.1f} s",
        ]
        return "\n".join(lines + [f"  ! {problem}" for problem in self.problems])


@contextlib.asynccontextmanager
async def database_url(backend: str, scratch: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{scratch / 'bench.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


class Bench:
    """One run: the fakes, the bot process, the submitter and the killer."""

    def __init__(self, options: Options, discord: StandardDiscord, relay: FakeRelay, bot: BotProcess,
                 database: Database) -> None:
        self.options = options
        self.discord = discord
        self.relay = relay
        self.bot = bot
        self.database = database
        self.random = random.Random(options.seed)
        self.figures = Figures()
        self.interactions: dict[str, FakeInteraction] = {}  # by prompt
        self.counts: dict[str, int] = {}
        self.members: list[User] = []
        self.submitted = 0
        self.advanced = asyncio.Event()  # a submission was made (the killer waits for its moment)
        # Held from an interaction's dispatch until its job row exists, and across a kill and restart.
        self.quiet_moment = asyncio.Lock()

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=sys.stderr, flush=True)

    # -- faults ---------------------------------------------------------------------------------

    def inject_fault(self) -> None:
        kind = self.random.choice(self.options.fault_kinds.split(","))
        self.figures.faults[kind] += 1
        if kind == "relay 5xx":
            self.relay.fail_next(500, ark_error("InternalServiceError"))
        elif kind == "relay dropped":
            self.relay.drop_connection_next(after_images=self.random.randint(0, 2))
        elif kind == "discord 5xx":
            self.discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", 500)
        elif kind == "discord 429":
            self.discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", 429)
        elif kind == "edit 5xx":
            self.discord.fail_next("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$", 500)
        elif kind == "answer lost":  # the follow-up is posted, then Discord answers 500
            self.discord.fail_next("POST", r"^/webhooks/\d+/[^/]+$", 500, after_effect=True)
        else:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULTS)})")

    # -- the member side ------------------------------------------------------------------------

    async def submit_all(self) -> None:
        for n in range(self.options.jobs):
            prompt = PROMPT.format(n=n)
            count = 1 if self.random.random() < 0.5 else self.random.randint(2, 4)
            member = self.members[n % len(self.members)]
            if self.random.random() < self.options.faults:
                self.inject_fault()
            async with self.quiet_moment:
                options: dict[str, object] = {"prompt": prompt}
                if count > 1:
                    options["count"] = count
                kills = self.figures.kills
                interaction = await self.discord.slash("imagine", options, user=member)
                self.interactions[prompt] = interaction
                self.counts[prompt] = count
                await self.stored_or_answered(prompt, interaction, kills)
            self.submitted += 1
            self.advanced.set()
            self.advanced = asyncio.Event()
            await asyncio.sleep(self.options.pace)  # the pace of the members, not a synchronisation

    async def stored_or_answered(self, prompt: str, interaction: FakeInteraction, kills: int) -> None:
        """Until the bot stored the job (or answered without one, or the process that had the
        interaction was killed): the database has no event, poll it."""
        query = sa.select(sa.func.count()).select_from(jobs).where(
            sa.cast(jobs.c.request, sa.String).like(f'%"prompt": "{prompt}"%'))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if summary(interaction) is not None:
                return
            async with self.database.engine.connect() as conn:
                if (await conn.execute(query)).scalar_one():
                    return
            if self.figures.kills != kills and self.bot.running:
                async with self.database.engine.connect() as conn:  # stored just before the kill?
                    if not (await conn.execute(query)).scalar_one():
                        return
            await asyncio.sleep(0.02)
        self.figures.problems.append(f"{prompt!r}: no job row 60 s after the interaction")

    # -- the operator's bad day -----------------------------------------------------------------

    async def kill_at_random(self) -> None:
        moments = sorted(self.random.randint(1, max(1, self.options.jobs - 1)) for _ in range(self.options.kills))
        for moment in moments:
            while self.submitted < moment:
                await self.advanced.wait()
            await asyncio.sleep(self.random.uniform(0, 1.0))  # a random moment, not a synchronisation
            async with contextlib.nullcontext() if self.options.kill_anywhere else self.quiet_moment:
                await self.bot.kill()
                self.figures.kills += 1
                self.say(f"killed the bot after {self.submitted} submissions; restarting")
                await self.bot.start()

    # -- the end --------------------------------------------------------------------------------

    async def wait_for_the_end(self) -> None:
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            open_replies = [p for p, i in self.interactions.items() if summary(i) is None]
            if not open_replies:
                return
            if not await self.unfinished_rows():
                # Every row is finished; a reply may still be being edited: give it a moment to land.
                def summarised(waiting: list[str] = open_replies) -> bool:
                    return all(summary(self.interactions[p]) for p in waiting)
                with contextlib.suppress(TimeoutError):
                    await self.discord.wait_for(summarised, 30, what="the last summaries")
                return
            await asyncio.sleep(0.25)
        self.figures.problems.append(f"gave up waiting after {self.options.timeout:.0f} s")

    async def unfinished_rows(self) -> int:
        async with self.database.engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.state.in_(["queued", "running"])))).scalar_one())

    async def tally(self) -> None:
        figures = self.figures
        figures.submitted = len(self.interactions)
        figures.relay_calls = len(self.relay.requests)
        async with self.database.engine.connect() as conn:
            columns = jobs.c.id, jobs.c.state, jobs.c.error, jobs.c.request, jobs.c.images
            rows = (await conn.execute(sa.select(*columns))).mappings().all()
            charges = dict((await conn.execute(
                sa.select(quota_ledger.c.job_id, sa.func.sum(quota_ledger.c.amount))
                .where(quota_ledger.c.kind == LedgerKind.CHARGE.value).group_by(quota_ledger.c.job_id))).all())
            figures.reservations_left = int((await conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(quota_reservations.c.images - quota_reservations.c.charged), 0))
                .where(quota_reservations.c.state == "live"))).scalar_one())
        by_prompt = {StoredRequest.from_json(row["request"]).prompt: row for row in rows}
        figures.stored = sum(prompt in self.interactions for prompt in by_prompt)
        seen = self.visible()
        for prompt, interaction in self.interactions.items():
            final = summary(interaction)
            row = by_prompt.get(prompt)
            if row is None and interaction.callback is None:
                figures.unanswered += 1  # the process died with it: Discord says it did not respond
                continue
            if final is None:
                figures.unsummarised += 1
                figures.problems.append(f"{prompt!r}: the reply never got a final summary")
            if row is None:
                figures.unstored += final is None
                continue
            job_id, state = row["id"], row["state"]
            shown = seen.get(job_id, Counter())
            recorded = {int(image["index"]) for image in row["images"]}
            twice = sum(n - 1 for n in shown.values() if n > 1)
            missing = recorded - set(shown)
            charged = int(charges.get(job_id) or 0)
            figures.duplicates += twice
            figures.ledger_difference += charged - len(shown)
            if twice:
                figures.problems.append(f"job {job_id} ({prompt!r}): images posted more than once {dict(shown)}")
            if missing:
                figures.lost += len(missing)
                figures.problems.append(f"job {job_id}: recorded images {sorted(missing)} are not visible")
            if charged != len(shown):
                figures.problems.append(f"job {job_id}: charged {charged}, {len(shown)} image(s) visible")
            if state in ("queued", "running"):
                figures.lost += self.counts[prompt] - len(shown)
                figures.problems.append(f"job {job_id} ({prompt!r}) never finished: {state}")
            elif state == "delivered" and len(shown) == self.counts[prompt] and not twice:
                figures.exactly_once += 1
            elif state == "delivered":
                figures.partial += 1
                self.say(f"partial: job {job_id} ({prompt!r}) {len(shown)} of {self.counts[prompt]}: {final}")
            else:
                figures.failed += 1
                self.say(f"failed: job {job_id} ({prompt!r}) {len(shown)} of {self.counts[prompt]}: "
                         f"{row['error']} / {final}")

    def visible(self) -> dict[str, Counter[int]]:
        """For each job id, how many times each of its images is visible in the guild."""
        job_ids = {name.split("-")[1] for message in self.discord.all_messages.values()
                   for name, _ in message.files if name.startswith("seedream-")}
        seen: dict[str, Counter[int]] = {job_id: Counter() for job_id in job_ids}
        for channel in self.discord.guild.channels.values():
            for message in self.discord.messages(channel):
                for name, _ in message.files:
                    for job_id in job_ids:
                        index = image_index(name, job_id)
                        if index is not None:
                            seen[job_id][index] += 1
        return seen


def summary(interaction: FakeInteraction) -> str | None:
    """The job's final summary on the member's deferred reply, once it is there."""
    original = next((m for m in interaction.messages if m.id == interaction.original_message_id), None)
    return original.content if original is not None and original.content.startswith(FINAL) else None


async def run(options: Options) -> Figures:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-bench-") as scratch:
        async with FakeRelay() as relay, running_fake() as discord, \
                database_url(options.backend, Path(scratch)) as url:
            relay.latency = 0.2
            relay.per_image_delay = 0.1
            members = [discord.alice]
            for n in range(options.members - 1):
                member = discord.add_user(f"member{n}")
                discord.add_member(discord.guild, member)
                members.append(member)
            env = {
                "INSTANCE_NAME": "crash-bench", "QUOTA_DEFAULT_LIMIT": "100000", "MAX_JOBS_PER_USER": "4",
                "RELAY_CONCURRENCY": "8", "CONFIRM_AT_IMAGES": "0", "RELAY_MAX_RETRIES": "1",
                "SYNC_COMMANDS": "true",
                **dict(setting.split("=", 1) for setting in options.bot_env),
            }
            bot = BotProcess(discord, relay, env=env, database_url=url, workdir=Path(scratch))
            database = Database(url)
            bench = Bench(options, discord, relay, bot, database)
            bench.members = members
            try:
                async with bot:
                    killer = asyncio.create_task(bench.kill_at_random())
                    await bench.submit_all()
                    await killer
                    await bench.wait_for_the_end()
                    await bench.tally()
                    log = bot.log()
            finally:
                await database.close()
    figures = bench.figures
    figures.wall = time.monotonic() - started
    figures.log = log
    if not figures.consistent and not options.quiet:
        print("the bot's log (last 80 lines):\n" + "\n".join(log.splitlines()[-80:]), file=sys.stderr)
    return figures


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--faults", type=float, default=0.2, help="fraction of jobs preceded by a fault")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between submissions")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--fault-kinds", default=",".join(SURVIVABLE),
                        help=f"comma-separated, from: {', '.join(FAULTS)} (default: all but the last)")
    parser.add_argument("--kill-anywhere", action="store_true",
                        help="kills may also fall between an interaction's dispatch and its job row")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--log", help="write the bot's log (every start) to this file")
    parser.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the bot process (repeatable), e.g. LOG_LEVEL=DEBUG")
    args = parser.parse_args(argv)
    return Options(**vars(args))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    figures = asyncio.run(run(options))
    if options.log:
        Path(options.log).write_text(figures.log)
    print(figures.report("SQLite" if options.backend == "sqlite" else "PostgreSQL"))
    return 0 if figures.consistent else 1


if __name__ == "__main__":
    sys.exit(main())
