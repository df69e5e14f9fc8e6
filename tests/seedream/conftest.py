"""Fixtures for the relay client: a loopback fake relay and a real aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bot.core.relay.client import SeedreamClient
from bot.core.relay.models import GenerationRequest, ImageEvent
from tests.fakes.fake_relay import FakeRelay


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


ClientFactory = Callable[..., SeedreamClient]


@pytest.fixture
def make_client(relay: FakeRelay, session: aiohttp.ClientSession) -> ClientFactory:
    """A client aimed at the fake relay; keyword arguments override the fast test defaults."""

    def factory(**overrides: Any) -> SeedreamClient:
        options: dict[str, Any] = {
            "base_url": relay.base_url,
            "api_key": relay.api_key,
            "model": relay.model,
            "backoff_base": 0.01,
            "timeout": 10.0,
        }
        options.update(overrides)
        return SeedreamClient(session, **options)

    return factory


async def collect(client: SeedreamClient, request: GenerationRequest) -> list[ImageEvent]:
    return [event async for event in client.generate(request)]
