"""PreferenceStore on both backends: one row per member, partial updates, clearing."""

from __future__ import annotations

import asyncio

from bot.core.jobs.preferences import MemberPreferences
from bot.storage.database import Database
from bot.storage.member_preferences import PreferenceStore


async def test_updates_merge_and_clear_removes_them(database: Database) -> None:
    store = PreferenceStore(database)
    assert (await store.get(7)).empty

    assert await store.update(7, size="4K", count=3) == MemberPreferences(size="4K", count=3)
    assert await store.update(7, watermark=False) == MemberPreferences(size="4K", count=3, watermark=False)
    assert (await store.get(8)).empty  # another member's are their own

    await store.clear(7)
    assert (await store.get(7)).empty


async def test_another_process_sees_a_change_at_its_next_reload(database: Database) -> None:
    here, there = PreferenceStore(database), PreferenceStore(database, ttl=3600)
    assert (await there.get(7)).empty  # loaded: nothing stored yet
    await here.update(7, size="4K")
    assert (await here.get(7)).size == "4K"  # this process's own change applies at once
    assert (await there.get(7)).empty  # the other holds its snapshot until its reload is due
    reloading = PreferenceStore(database, ttl=0)  # a reload on every call
    assert (await reloading.get(7)).size == "4K"
    await here.clear(7)
    assert (await reloading.get(7)).empty


async def test_a_burst_of_lookups_shares_one_reload(database: Database) -> None:
    await PreferenceStore(database).update(9, count=4)
    store = PreferenceStore(database)
    results = await asyncio.gather(*(store.get(9) for _ in range(50)))
    assert {result.count for result in results} == {4}
    assert store._reload is not None and store._reload.done()
