"""RelayGate: variations become parallel single-image requests within the relay limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bot.core.jobs.variations import RelayGate
from bot.core.relay.errors import ContentBlocked
from bot.core.relay.models import GeneratedImage, GenerationRequest, ImageEvent, ImageFailure
from tests.core.test_runner import until


class Relay:
    """Records the requests it gets and how many were in flight at once; each waits for `release`."""

    def __init__(self, failing: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.requests: list[GenerationRequest] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        self.failing = failing

    async def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]:
        number = len(self.requests)
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            if number in self.failing:
                raise ContentBlocked()
            for index in range(request.count):
                yield GeneratedImage(index, f"take {number} image {index}".encode())
        finally:
            self.in_flight -= 1


async def collect(gate: RelayGate, request: GenerationRequest) -> list[ImageEvent]:
    return [event async for event in gate.generate(request)]


async def test_variations_are_single_image_requests_in_parallel_within_the_limit():
    relay = Relay()
    gate = RelayGate(relay, limit=3)
    request = GenerationRequest(prompt="a cat", size="2K", count=5, variations=True)
    task = asyncio.create_task(collect(gate, request))
    await until(lambda: len(relay.requests) >= 3, "three takes to start")
    assert relay.in_flight == 3  # the limit, not five
    relay.release.set()
    events = await task

    assert relay.most_in_flight == 3
    assert [(r.count, r.variations, r.prompt) for r in relay.requests] == [(1, False, "a cat")] * 5
    assert sorted(event.index for event in events) == [0, 1, 2, 3, 4]
    assert all(isinstance(event, GeneratedImage) for event in events)


async def test_a_failed_take_is_one_failure_and_the_others_arrive():
    relay = Relay(failing={1})
    relay.release.set()
    events = await collect(RelayGate(relay, limit=4),
                           GenerationRequest(prompt="a cat", size="2K", count=3, variations=True))

    failures = [event for event in events if isinstance(event, ImageFailure)]
    assert len(failures) == 1 and isinstance(failures[0].error, ContentBlocked)
    assert len([event for event in events if isinstance(event, GeneratedImage)]) == 2


async def test_a_set_is_one_request_and_counts_against_the_limit():
    relay = Relay()
    relay.release.set()
    events = await collect(RelayGate(relay, limit=1), GenerationRequest(prompt="a cat", size="2K", count=3))
    assert [r.count for r in relay.requests] == [3] and len(events) == 3


async def test_stopping_early_cancels_the_other_takes():
    relay = Relay()
    gate = RelayGate(relay, limit=4)
    events = gate.generate(GenerationRequest(prompt="a cat", size="2K", count=4, variations=True))
    first = asyncio.ensure_future(anext(events))  # type: ignore[arg-type]
    await until(lambda: len(relay.requests) >= 4, "four takes to start")
    relay.release.set()
    await first
    await events.aclose()  # type: ignore[attr-defined]
    assert relay.in_flight == 0
