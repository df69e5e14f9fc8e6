"""The bot as a real `python -m bot` subprocess against the in-process fakes, for crash and shard tests.

    async with FakeRelay() as relay, running_fake() as discord:
        async with BotProcess(discord, relay, env={"SHARD_COUNT": "2", "SHARD_IDS": "0"}) as proc:
            ...                        # the process has IDENTIFYed shard 0 of 2 on the fake gateway
            await proc.kill()          # SIGKILL; returns once the fake saw its gateway sessions drop
            await proc.start()         # the same process again (same env, database, instance name)
            await proc.terminate()     # SIGTERM; returns its exit code
            proc.send_signal(signal.SIGTERM); ...; await proc.wait()   # act while it shuts down

Ready means: every shard of the process's slice has IDENTIFYed on the fake since this start
(setup_hook, so migrations and the command sync, runs before the first IDENTIFY). The slice is
SHARD_IDS of SHARD_COUNT, else every shard of SHARD_COUNT, else `discord.recommended_shards`.
Two processes started at once must run different slices, or their sessions could be confused;
processes sharing a database need different SHARD_IDS or INSTANCE_NAMEs (the default instance
name is the host's, plus `-shards-<ids>`), else each takes the other's leases for its own.

`started_together(a, b)` starts several at once and closes them all at the end.
Each start appends the process's stdout and stderr to `proc.log_path`; a process that exits
while starting raises `BotExited` with the log's tail. `fresh_postgres_database()` gives a
test its own PostgreSQL database, which every process of the test can share by URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import parse_shard_ids
from bot.storage.database import Database
from tests.conftest import POSTGRES_URL, require_postgres
from tests.fakes.discord_gateway import GatewaySession
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_relay import FakeRelay

REPO = Path(__file__).resolve().parents[1]


class BotExited(RuntimeError):
    """The bot process ended while the test waited for it to start."""


class BotProcess:
    """One bot process; restartable. `env` adds to (or overrides) the settings aimed at the fakes."""

    def __init__(self, discord: FakeDiscord, relay: FakeRelay, *, env: Mapping[str, str] | None = None,
                 database_url: str | None = None, workdir: Path | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.discord = discord
        self.relay = relay
        self.startup_timeout = startup_timeout
        self._scratch = tempfile.TemporaryDirectory(prefix="bot-process-") if workdir is None else None
        self.workdir = workdir or Path(self._scratch.name)  # type: ignore[union-attr]
        self.log_path = self.workdir / "bot.log"
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            **discord.env(),
            "IMAGE_API_BASE_URL": relay.base_url,
            "IMAGE_API_KEY": relay.api_key,
            "DATABASE_URL": database_url or f"sqlite:///{self.workdir / 'bot.db'}",
            "RELAY_MAX_RETRIES": "0",
            "LOG_LEVEL": "INFO",
            **(env or {}),
        }
        self.sessions: list[GatewaySession] = []  # this run's gateway sessions, one per shard
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    # -- what the test reads ----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def shard_slice(self) -> tuple[tuple[int, ...], int]:
        """(shard ids, shard count) this process connects, read from its env as the bot reads it."""
        count_text = self.env.get("SHARD_COUNT", "").strip()
        count = int(count_text) if count_text else self.discord.recommended_shards
        ids_text = self.env.get("SHARD_IDS", "").strip()
        try:
            ids = parse_shard_ids(ids_text, count) if ids_text else tuple(range(count))
        except ValueError:  # the bot refuses it too: start() reports the exit and its log
            ids = ()
        return ids, count

    def log(self) -> str:
        """Everything the process printed, over every start."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def owns(self, session: GatewaySession) -> bool:
        return session in self.sessions

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn `python -m bot` and return once every shard of its slice has IDENTIFYed."""
        if self.running:
            raise RuntimeError("the bot process is already running")
        ids, count = self.shard_slice()
        after = len(self.discord.sessions)
        self.sessions = []
        self.starts += 1
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts} ---\n".encode())
        self._log.flush()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.workdir, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=asyncio.subprocess.STDOUT)
        process = self._process

        def identified() -> list[GatewaySession] | None:
            if process.returncode is not None:
                raise BotExited(f"the bot exited with {process.returncode} while starting:\n{self._tail()}")
            live = {s.shard: s for s in self.discord.sessions[after:] if s.identified and s.shard is not None}
            sessions = [live.get((shard, count)) for shard in ids]
            return [s for s in sessions if s is not None] if ids and all(sessions) else None

        try:
            self.sessions = await self.discord.wait_for(
                identified, self.startup_timeout, what=f"the bot process to IDENTIFY shards {list(ids)} of {count}")
        except BaseException:
            await self.kill()
            raise

    def send_signal(self, signum: int) -> None:
        """Signal the process and return at once (`wait()` for its exit)."""
        if self._process is None:
            raise RuntimeError("the bot process was never started")
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    async def kill(self) -> int:
        """SIGKILL (kill -9): nothing runs on its way out. Returns once the fake saw its sessions close."""
        return await self._signal(signal.SIGKILL, timeout=30.0)

    async def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (docker stop) and wait up to `timeout` for the process to exit by itself."""
        return await self._signal(signal.SIGTERM, timeout=timeout)

    async def restart(self, *, hard: bool = True, **env: str) -> None:
        """Kill (or, with `hard=False`, SIGTERM) the process and start it again, with `env` changes."""
        if self.running:
            await (self.kill() if hard else self.terminate())
        self.env.update(env)
        await self.start()

    async def wait(self, timeout: float = 60.0) -> int:
        """Until the process exits by itself; its exit code."""
        if self._process is None:
            raise RuntimeError("the bot process was never started")
        code = await asyncio.wait_for(self._process.wait(), timeout)
        await self._closed()
        return code

    async def _signal(self, signum: int, *, timeout: float) -> int:
        self.send_signal(signum)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            assert self._process is not None
            self._process.kill()
            await self._process.wait()
            await self._closed()
            raise TimeoutError(f"the bot did not exit within {timeout}s of signal {signum}:\n{self._tail()}") \
                from None

    async def _closed(self) -> None:
        """After exit: close the log, and wait for the fake to notice the process's gateway sessions drop."""
        if self._log is not None:
            self._log.close()
            self._log = None
        sessions = list(self.sessions)
        await self.discord.wait_for(lambda: all(s.closed for s in sessions), 10.0,
                                    what="the fake gateway to see the process's sessions close")

    def _tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    async def close(self) -> None:
        """Kill the process if it still runs and remove its scratch directory."""
        if self.running:
            await self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            self._scratch.cleanup()

    async def __aenter__(self) -> Self:
        try:
            if not self.running:
                await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def started_together(*processes: BotProcess) -> AsyncIterator[tuple[BotProcess, ...]]:
    """Start every process at once (as `docker compose up` does) and close them all afterwards."""
    try:
        outcomes = await asyncio.gather(*(p.start() for p in processes), return_exceptions=True)
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            raise failed[0]
        yield processes
    finally:
        for process in processes:
            await process.close()


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test (dropped afterwards); yields its URL.

    A database rather than a schema: processes are configured by DATABASE_URL alone.
    """
    require_postgres()
    name = f"t_procs_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        database = Database(POSTGRES_URL, isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs no transaction
        try:
            async with database.engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await database.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
