"""The crash-consistency bench (bench/crash_consistency.py), small: 30 jobs, relay and Discord
faults, the bot killed with SIGKILL twice. Every job ends delivered exactly once, failed or
partial; no image twice, none lost, the ledger charges exactly the images visible."""

from __future__ import annotations

import pytest

from bench.crash_consistency import parse, run


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_thirty_jobs_with_faults_and_two_kills(backend: str) -> None:
    figures = await run(parse(["--jobs", "30", "--kills", "2", "--faults", "0.2", "--backend", backend,
                               "--quiet", "--timeout", "120"]))

    assert figures.submitted == 30
    assert figures.kills == 2
    assert figures.exactly_once + figures.partial + figures.failed == 30, figures.problems
    assert (figures.duplicates, figures.lost, figures.ledger_difference) == (0, 0, 0), figures.problems
    assert figures.unsummarised == 0, figures.problems
    assert figures.reservations_left == 0


async def test_a_follow_up_whose_answer_is_lost_is_not_posted_twice() -> None:
    figures = await run(parse(["--jobs", "6", "--kills", "0", "--faults", "1", "--fault-kinds", "answer lost",
                               "--quiet", "--timeout", "60"]))

    assert figures.duplicates == 0, figures.problems
