"""Variations: `count` independent takes on one prompt, as parallel single-image relay requests.

A Seedream *set* is one request whose images belong together (a storyboard). `mode:variations`
asks for the opposite, several unrelated takes to pick from, which is also what a relay that
ignores the set fields can serve. `RelayGate` wraps the relay client for the runner: a variations
request becomes `count` requests of one image each, run in parallel, and their images are yielded
as they come (numbered by take, so they are delivered like a set). A take that fails is one
`ImageFailure`, so it costs nothing while the others are still charged. Every relay call made
through the gate, of any job, holds one of its `limit` slots, so variations never push the
calls in flight past `RELAY_CONCURRENCY`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

from bot.core.jobs.runner import ImageGenerator
from bot.core.relay.errors import SeedreamError
from bot.core.relay.models import GenerationRequest, ImageEvent, ImageFailure

log = logging.getLogger(__name__)


class RelayGate:
    """An ImageGenerator over `inner` with at most `limit` relay calls in flight; fans out variations."""

    def __init__(self, inner: ImageGenerator, *, limit: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(limit)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]:
        if not request.variations or request.count == 1:
            async with self._slots:
                async for event in self._inner.generate(dataclasses.replace(request, variations=False)):
                    yield event
            return
        async for event in self._variations(request):
            yield event

    async def _variations(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]:
        events: asyncio.Queue[ImageEvent | None] = asyncio.Queue()
        single = dataclasses.replace(request, count=1, variations=False)

        async def take(index: int) -> None:
            try:
                async with self._slots:
                    async for event in self._inner.generate(single):
                        await events.put(dataclasses.replace(event, index=index))
            except SeedreamError as error:
                await events.put(ImageFailure(index, error))
            except Exception:
                log.exception("variation %d: unexpected error", index + 1)
                await events.put(ImageFailure(index, SeedreamError()))
            finally:
                await events.put(None)  # this take is over

        takes = [asyncio.create_task(take(index), name=f"variation-{index + 1}") for index in range(request.count)]
        try:
            running = len(takes)
            while running:
                event = await events.get()
                if event is None:
                    running -= 1
                else:
                    yield event
        finally:  # the job was cancelled, or its consumer stopped: stop the other takes too
            for task in takes:
                task.cancel()
            await asyncio.gather(*takes, return_exceptions=True)
