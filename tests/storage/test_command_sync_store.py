"""Two processes remembering a command sync at once: both succeed and one hash stays."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage.command_sync import CommandSyncStore
from bot.storage.database import Database
from tests.procs import fresh_postgres_database


@pytest.mark.postgres
async def test_two_processes_remembering_the_same_scope_at_once_both_succeed() -> None:
    async with fresh_postgres_database() as url:
        handles = [Database(url) for _ in range(2)]  # separate pools, as separate processes have
        try:
            await handles[0].migrate()
            stores = [CommandSyncStore(handle) for handle in handles]
            for round_ in range(10):
                outcomes = await asyncio.gather(stores[0].remember(f"scope-{round_}", "a"),
                                                stores[1].remember(f"scope-{round_}", "b"),
                                                return_exceptions=True)
                assert outcomes == [None, None]
                assert await stores[0].synced_hash(f"scope-{round_}") in ("a", "b")
        finally:
            for handle in handles:
                await handle.close()


async def test_remembering_again_replaces_the_hash(database: Database) -> None:
    store = CommandSyncStore(database)
    await store.remember("global", "first")
    await store.remember("global", "second")
    assert await store.synced_hash("global") == "second"
