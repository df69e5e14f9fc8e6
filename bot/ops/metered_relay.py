"""The relay client, timed and its failures counted, for the job runner (seedream_relay_* metrics)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

from bot.core.relay.models import GenerationRequest, ImageEvent, ImageFailure
from bot.ops.metrics import BotMetrics


class _Generator(Protocol):
    def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]: ...


class MeteredGenerator:
    """Wraps the relay client: each request's duration, and each failed request or image by class."""

    def __init__(self, inner: _Generator, metrics: BotMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def generate(self, request: GenerationRequest) -> AsyncIterator[ImageEvent]:
        started = time.monotonic()
        events = self._inner.generate(request)
        try:
            async for event in events:
                if isinstance(event, ImageFailure):
                    self._metrics.relay_error(event.error)
                yield event
        except Exception as error:  # SeedreamError, or a bug: counted either way, then passed on
            self._metrics.relay_error(error)
            raise
        finally:
            if isinstance(events, AsyncGenerator):  # stopped early: close the request now, not at GC
                with contextlib.suppress(Exception):
                    await events.aclose()
            self._metrics.relay_request(time.monotonic() - started)
