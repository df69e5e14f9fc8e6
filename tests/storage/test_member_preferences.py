"""PreferenceStore on both backends: one row per member, partial updates, clearing."""

from __future__ import annotations

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
