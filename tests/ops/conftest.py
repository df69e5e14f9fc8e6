"""Operator commands run as `main(argv)` would run them, against the fake Discord and fake relay.

`await cli("doctor", "--json")` runs `bot.__main__.main` in a worker thread (it owns its event loop,
while the fakes keep serving on the test's loop), with the settings in the environment and the
working directory a scratch directory (so no .env is read), and returns exit code and output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.__main__ import main
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def line(self, start: str) -> str:
        """The one output line that starts with `start`."""
        matches = [line for line in self.out.splitlines() if line.startswith(start)]
        assert len(matches) == 1, f"expected one line starting {start!r} in:\n{self.text}"
        return matches[0]


Cli = Callable[..., Awaitable[CliResult]]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'bot.db'}"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(fake_discord: StandardDiscord, relay: FakeRelay, database_url: str) -> dict[str, str]:
    """The settings `cli` runs with; tests change or delete entries."""
    return {**fake_discord.env(), "IMAGE_API_KEY": relay.api_key, "IMAGE_API_BASE_URL": relay.base_url,
            "DATABASE_URL": database_url, "RELAY_MAX_RETRIES": "0"}


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    def run(argv: list[str]) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exit_:
                code = int(exit_.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    async def invoke(*argv: str) -> CliResult:
        for name in ("DISCORD_TOKEN", "IMAGE_API_KEY", "IMAGE_API_BASE_URL", "DISCORD_API_BASE_URL",
                     "DISCORD_GATEWAY_URL", "DATABASE_URL", "MESSAGE_CONTENT_INTENT", "SYNC_COMMANDS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        root = logging.getLogger()
        saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, root.handlers[:], root.level
        try:
            return await asyncio.to_thread(run, list(argv))
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, root.handlers[:], level = saved
            root.setLevel(level)

    return invoke
