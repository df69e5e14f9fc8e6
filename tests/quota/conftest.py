"""Quota fixtures: an injected clock and a service on each backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.core.quota import Period, QuotaService
from bot.storage.database import Database

GUILD = 1_000_000_000_000_000_001
USER = 2_000_000_000_000_000_002
MOD = 3_000_000_000_000_000_003


class Clock:
    """A hand-moved clock; starts on Wednesday 2025-01-15 12:00 UTC."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def set(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> None:
        self.now = datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


ServiceFactory = Callable[..., QuotaService]


@pytest.fixture
def make_service(database: Database, clock: Clock) -> ServiceFactory:
    def make(**options: Any) -> QuotaService:
        options.setdefault("global_default_limit", 10)
        options.setdefault("default_period", Period.DAILY)
        options.setdefault("reservation_ttl", timedelta(hours=1))
        return QuotaService(database, clock=clock, **options)

    return make


@pytest.fixture
def quota(make_service: ServiceFactory) -> QuotaService:
    return make_service()


class ConnectionGauge:
    open: int = 0
    most: int = 0


@contextmanager
def gauge_connections(database: Database) -> Iterator[ConnectionGauge]:
    """Counts connections checked out of the pool at once (proof that callers overlapped)."""
    gauge = ConnectionGauge()
    pool = database.engine.sync_engine.pool

    def checkout(*_: object) -> None:
        gauge.open += 1
        gauge.most = max(gauge.most, gauge.open)

    def checkin(*_: object) -> None:
        gauge.open -= 1

    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    try:
        yield gauge
    finally:
        event.remove(pool, "checkout", checkout)
        event.remove(pool, "checkin", checkin)
