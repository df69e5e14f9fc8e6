"""The image's HEALTHCHECK (and docker-compose's copy) asks /healthz on METRICS_PORT; run here against a real bot.

No Docker engine here: the files are read, and the check's own command is run as Docker would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def healthcheck_command() -> list[str]:
    """The exec-form CMD of the Dockerfile's HEALTHCHECK (continuation lines joined)."""
    text = dockerfile().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK ")]
    return list(json.loads(line.split(" CMD ", 1)[1]))


def test_the_wheels_come_from_a_bind_mount_not_a_layer():
    text = dockerfile()
    assert "COPY --from=build /wheels" not in text
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in text
    assert re.search(r"^ENV .*METRICS_PORT=9100", text.replace("\\\n", " "), re.MULTILINE)


def test_compose_runs_the_same_check():
    compose = (REPO / "docker-compose.yml").read_text()
    lines = [line for line in compose.splitlines() if line.strip().startswith("test: [") and "python" in line]
    assert lines, "docker-compose.yml has no bot health check"
    for line in lines:  # the bot service and each shard process
        assert json.loads(line.split("test:", 1)[1]) == ["CMD", *healthcheck_command()]


async def run_check(port: int | None) -> int:
    command = healthcheck_command()
    assert command[0] == "python"
    env = {"PATH": os.environ.get("PATH", "")}
    if port is not None:
        env["METRICS_PORT"] = str(port)
    process = await asyncio.create_subprocess_exec(sys.executable, *command[1:], env=env,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(process.wait(), 30)


async def test_the_check_passes_while_connected_and_fails_once_discord_is_gone(boot, fake_discord):
    async with boot(metrics_port=0) as bot:
        assert bot.ops_server is not None
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        assert await run_check(bot.ops_server.port) == 0

        await fake_discord.close()
        await fake_discord.wait_for(lambda: bot.ws is None or not bot.ws.open, 10, what="the gateway to drop")
        assert await run_check(bot.ops_server.port) != 0


async def test_without_metrics_port_the_check_has_nothing_to_ask_and_passes():
    assert await run_check(None) == 0
