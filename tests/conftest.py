"""Shared fixtures: a migrated database on each backend."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.storage.database import Database
from tests.fakes.fake_relay import FakeRelay
from tests.harness import StandardDiscord, running_fake

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """Skip with a reason when no server is reachable, but never skip in CI."""
    if postgres_reachable():
        return
    reason = f"no PostgreSQL server reachable at {POSTGRES_URL} (set TEST_POSTGRES_URL)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests")
    pytest.skip(reason)


async def open_database(backend: str, tmp_path: Path) -> tuple[Database, str]:
    """A fresh, migrated database; on PostgreSQL each test gets its own schema."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        database = Database(url)
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = Database(POSTGRES_URL)
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.close()
        url = POSTGRES_URL
        database = Database(url, connect_args={"server_settings": {"search_path": schema}})
        database.test_schema = schema  # type: ignore[attr-defined]
    await database.migrate()
    return database, url


async def close_database(database: Database) -> None:
    schema = getattr(database, "test_schema", None)
    await database.close()
    if schema:
        admin = Database(POSTGRES_URL)
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database on SQLite and on PostgreSQL (each test runs on both)."""
    db, _ = await open_database(request.param, tmp_path)
    try:
        yield db
    finally:
        await close_database(db)


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    """The fake image relay on loopback."""
    async with FakeRelay() as fake:
        yield fake


@pytest.fixture
async def fake_discord() -> AsyncIterator[StandardDiscord]:
    """The fake Discord (REST + gateway) holding the standard test guild."""
    async with running_fake() as fake:
        yield fake
