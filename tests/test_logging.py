"""Logs: LOG_FORMAT=json lines that parse and never show a secret, and a normal start without library noise."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.logging_setup import configure_logging
from tests.fakes.fake_relay import FakeRelay
from tests.harness import running_fake

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_json_lines_parse_and_redact_secrets_in_message_and_traceback(capsys, restore_logging):
    configure_logging("INFO", ["tok-123456", "key-abcdef"], "json")
    log = logging.getLogger("bot.some.module")
    log.info("calling relay with %s", "key-abcdef")
    try:
        raise RuntimeError("token tok-123456 was refused")
    except RuntimeError:
        log.exception("login failed")

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message", "exc"}
    assert first["level"] == "INFO" and first["logger"] == "bot.some.module"
    assert first["message"] == "calling relay with [redacted]" and first["exc"] is None
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and second["message"] == "login failed"
    assert "RuntimeError: token [redacted] was refused" in second["exc"]
    assert "tok-123456" not in "".join(lines) and "key-abcdef" not in "".join(lines)


def test_a_gateway_reconnect_is_one_warning_line_not_a_traceback(capsys, restore_logging):
    configure_logging("INFO", [], "text")
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    except ConnectionRefusedError:
        logging.getLogger("discord.client").exception("Attempting a reconnect in %.2fs", 1.5)

    [line] = capsys.readouterr().err.strip().splitlines()
    assert "WARNING discord.client: Discord connection lost (ConnectionRefusedError: " in line
    assert line.endswith("attempting a reconnect in 1.50s")


async def test_a_normal_start_in_json_has_no_alembic_or_voice_lines(tmp_path):
    async with running_fake() as fake, FakeRelay() as relay:
        # PYTHONFAULTHANDLER: a bot that hangs dumps every thread's stack on SIGABRT (below).
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1", **fake.env(),
               "IMAGE_API_KEY": relay.api_key, "IMAGE_API_BASE_URL": relay.base_url, "LOG_FORMAT": "json",
               "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        reached = "started"
        try:
            await fake.wait_until_connected(60)
            reached = "connected"
            await fake.wait_for(lambda: fake.commands, 30, what="the commands synced")
            reached = "commands synced"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                out, err = await asyncio.wait_for(process.communicate(), 30)
            except TimeoutError:  # say what the bot was doing (it hung here twice, under load, silent)
                process.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack to stderr
                try:
                    out, err = await asyncio.wait_for(process.communicate(), 10)
                except TimeoutError:
                    process.kill()
                    out, err = await process.communicate()
                pytest.fail(f"the bot ({reached}) did not exit within 30 s of SIGTERM; its log and "
                            f"stacks:\n{err.decode()[-12000:]}")
    assert process.returncode == 0, err.decode()
    entries = [json.loads(line) for line in err.decode().strip().splitlines()]
    assert entries, "a start logs something"
    assert not [e for e in entries if e["logger"].startswith("alembic")]
    assert not [e for e in entries if "voice" in e["message"]]
    assert not [e for e in entries if e["level"] in ("WARNING", "ERROR")], entries
    assert fake.token not in err.decode() + out.decode()
