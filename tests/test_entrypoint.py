"""`python -m bot` stops with one clear line when a setting is missing or malformed, never echoing a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logging_setup import RedactSecrets


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env={**base, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_missing_secrets_stop_the_bot_with_one_line_naming_them(tmp_path):
    result = run_bot(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DISCORD_TOKEN is required" in lines[0] and "IMAGE_API_KEY is required" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_malformed_setting_is_named_without_echoing_secrets(tmp_path):
    result = run_bot(tmp_path, DISCORD_TOKEN="very-secret-token", IMAGE_API_KEY="very-secret-key",
                     DATABASE_URL="mysql://nope", RELAY_CONCURRENCY="many")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "RELAY_CONCURRENCY" in result.stderr
    assert "very-secret" not in result.stderr + result.stdout


def test_settings_are_read_from_a_dotenv_file(tmp_path):
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-dotenv\n")
    result = run_bot(tmp_path)
    assert "DISCORD_TOKEN" not in result.stderr and "IMAGE_API_KEY is required" in result.stderr


@pytest.mark.parametrize("where", ["message", "traceback"])
def test_logs_never_show_a_secret(where, caplog):
    import logging

    logger = logging.getLogger("secret-test")
    handler_filter = RedactSecrets(["tok-123456", "key-abcdef"])
    record_text = "calling relay with key-abcdef and tok-123456"
    if where == "message":
        record = logger.makeRecord("x", logging.INFO, __file__, 1, record_text, None, None)
    else:
        try:
            raise RuntimeError(record_text)
        except RuntimeError:
            record = logger.makeRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    handler_filter.filter(record)
    shown = logging.Formatter().format(record)
    assert "key-abcdef" not in shown and "tok-123456" not in shown
    assert "[redacted]" in shown


async def test_a_rejected_discord_token_stops_the_bot_with_a_clear_line(tmp_path):
    import asyncio

    from tests.harness import running_fake

    async with running_fake() as fake:
        env = {**fake.env(), "DISCORD_TOKEN": "wrong-token-value", "IMAGE_API_KEY": "k",
               "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
        result = await asyncio.to_thread(run_bot, tmp_path, **env)
    assert result.returncode == 1
    assert "Discord rejected DISCORD_TOKEN" in result.stderr
    assert "wrong-token-value" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
