"""The performance benches run, small, so CI proves they work; they assert no timing (figures
vary by machine and load: README carries them)."""

from __future__ import annotations

import re

import pytest

from bench import imagine_load, set_fitting


def figure(output: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}\s+(.+)$", output, re.M)
    assert match, f"no {label!r} line in:\n{output}"
    return match.group(1)


async def test_a_small_burst_reports_every_figure_with_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    await imagine_load.run(imagine_load.parse(["--requests", "12", "--bursts", "2", "--relay-latency", "0.3",
                                               "--profile"]))
    output = capsys.readouterr().out

    assert "burst 1: 12 jobs, 12 acknowledged, 0 failed" in output
    assert "burst 2: 12 jobs, 12 acknowledged, 0 failed" in output
    # A one-image job: the defer and one edit; its statements are counted by the bot's /metrics.
    assert figure(output, "per job").startswith("2.00 Discord calls, ")
    for label in ("ack latency p50 / p99 / max", "after the frame left the fake", "makespan",
                  "relay call after command", "bot CPU per job", "bot peak memory"):
        figure(output, label)
    assert "profile:" in output and "the bot's own functions" in output
    assert "peak memory, last burst against the first" in output


@pytest.mark.postgres
async def test_two_shard_processes_share_a_burst_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    await imagine_load.run(imagine_load.parse(["--requests", "10", "--relay-latency", "0.3", "--shards", "2",
                                               "--fresh-postgres"]))  # a database of its own, dropped after
    output = capsys.readouterr().out

    assert "PostgreSQL, 2 bot processes" in output
    assert "burst 1: 10 jobs, 10 acknowledged, 0 failed" in output


async def test_fitting_a_set_reports_the_longest_loop_pause(capsys: pytest.CaptureFixture[str]) -> None:
    args = set_fitting.parse(["--images", "3", "--side", "1024", "--file-limit-mib", "1"])
    await set_fitting.run(args.images, args.side, int(args.file_limit_mib * 2**20))
    output = capsys.readouterr().out

    assert "3 x 1024x1024 noisy PNG" in output and "fitted under 1 MiB" in output
    figure(output, "longest event-loop pause")
    figure(output, "peak memory")
