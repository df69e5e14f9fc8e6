"""A job's reservation: reserve before the relay, commit what was delivered, release the rest."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.core.quota import (
    LedgerKind,
    QuotaExceeded,
    QuotaService,
    QuotaStatus,
    ReservationState,
)
from bot.storage.database import Database
from tests.quota.conftest import GUILD, USER, Clock, ServiceFactory, gauge_connections


async def reserve(quota: QuotaService, job_id: str, images: int = 1, user: int = USER) -> QuotaStatus:
    return await quota.reserve(guild_id=GUILD, user_id=user, role_ids=[], job_id=job_id, images=images)


async def status(quota: QuotaService, user: int = USER) -> QuotaStatus:
    return await quota.status(GUILD, user, [])


async def test_fifty_concurrent_reservations_against_a_limit_of_ten_grant_exactly_ten(
    database: Database, quota: QuotaService
) -> None:
    with gauge_connections(database) as gauge:
        outcomes = await asyncio.gather(
            *(reserve(quota, f"job{n:05d}") for n in range(50)), return_exceptions=True
        )

    granted = [outcome for outcome in outcomes if isinstance(outcome, QuotaStatus)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, QuotaExceeded)]
    assert len(granted) == 10 and len(refused) == 40, outcomes
    if database.dialect == "postgresql":  # SQLite writers queue on the in-process write lock by design
        assert gauge.most >= 5, "the reservations did not overlap, so the test proved nothing"
    now = await status(quota)
    assert (now.reserved, now.used, now.remaining) == (10, 0, 0)
    reserve_rows = [e for e in await quota.history(GUILD, USER, 100) if e.kind is LedgerKind.RESERVE]
    assert len(reserve_rows) == 10


async def test_reservation_counts_against_the_limit_while_the_job_runs(quota: QuotaService) -> None:
    after = await reserve(quota, "jobaaaaa", images=4)

    assert (after.limit, after.reserved, after.used, after.remaining) == (10, 4, 0, 6)
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(quota, "jobbbbbb", images=7)
    assert refused.value.requested == 7 and refused.value.status.remaining == 6
    await reserve(quota, "jobcccc", images=6)


async def test_relay_failure_releases_everything(quota: QuotaService) -> None:
    await reserve(quota, "jobfaild", images=4)

    await quota.release("jobfaild", "relay error: content blocked")

    now = await status(quota)
    assert (now.used, now.reserved, now.remaining) == (0, 0, 10)
    release = (await quota.history(GUILD, USER))[0]
    assert (release.kind, release.amount, release.job_id) == (LedgerKind.RELEASE, 4, "jobfaild")
    assert release.reason == "relay error: content blocked"


async def test_a_crash_mid_job_strands_nothing_once_the_reservation_expires(
    make_service: ServiceFactory, clock: Clock
) -> None:
    before_crash = make_service()
    await reserve(before_crash, "jobcrash", images=3)
    assert (await status(before_crash)).remaining == 7

    clock.advance(minutes=61)  # the process died; a new one starts later
    after_restart = make_service()

    assert (await status(after_restart)).remaining == 10  # an expired hold stops counting at once
    assert await after_restart.settle_expired() == ["jobcrash"]
    assert await after_restart.settle_expired() == []
    now = await status(after_restart)
    assert (now.used, now.reserved, now.remaining) == (0, 0, 10)
    expiry = (await after_restart.history(GUILD, USER))[0]
    assert (expiry.kind, expiry.amount, expiry.job_id) == (LedgerKind.EXPIRE, 3, "jobcrash")
    assert (await after_restart.reservation("jobcrash")).state is ReservationState.EXPIRED


async def test_reservation_still_within_its_ttl_is_not_settled(quota: QuotaService, clock: Clock) -> None:
    await reserve(quota, "jobslow1", images=2)
    clock.advance(minutes=59)

    assert await quota.settle_expired() == []
    assert (await status(quota)).reserved == 2


async def test_a_set_that_returns_fewer_images_charges_only_those(quota: QuotaService) -> None:
    await reserve(quota, "jobshort", images=4)

    await quota.commit("jobshort", produced=3)

    now = await status(quota)
    assert (now.used, now.reserved, now.remaining) == (3, 0, 7)
    release, charge = (await quota.history(GUILD, USER))[:2]
    assert (charge.kind, charge.amount) == (LedgerKind.CHARGE, 3)
    assert (release.kind, release.amount) == (LedgerKind.RELEASE, 1)
    stored = await quota.reservation("jobshort")
    assert (stored.state, stored.images, stored.charged) == (ReservationState.COMMITTED, 4, 3)


async def test_commit_never_charges_more_than_was_reserved(quota: QuotaService) -> None:
    await reserve(quota, "jobextra", images=2)
    await quota.commit("jobextra", produced=5)
    assert (await status(quota)).used == 2


async def test_commit_and_release_are_idempotent(quota: QuotaService) -> None:
    await reserve(quota, "jobtwice", images=3)
    await reserve(quota, "jobrelse", images=2)

    await quota.commit("jobtwice", produced=3)
    await quota.commit("jobtwice", produced=3)
    await quota.release("jobtwice", "late failure report")
    await quota.release("jobrelse", "cancelled")
    await quota.release("jobrelse", "cancelled again")
    await quota.commit("jobrelse", produced=2)

    now = await status(quota)
    assert (now.used, now.reserved) == (3, 0)
    kinds = [entry.kind for entry in await quota.history(GUILD, USER)]
    assert kinds == [LedgerKind.RELEASE, LedgerKind.CHARGE, LedgerKind.RESERVE, LedgerKind.RESERVE]


async def test_settling_a_job_without_a_reservation_changes_nothing(quota: QuotaService) -> None:
    await quota.commit("nojob000", produced=2)
    await quota.release("nojob000", "nothing held")
    assert await quota.history(GUILD, USER) == []


async def test_reserving_again_for_a_live_job_holds_nothing_more(quota: QuotaService) -> None:
    await reserve(quota, "jobretry", images=3)
    again = await reserve(quota, "jobretry", images=3)

    assert again.reserved == 3
    await quota.commit("jobretry", produced=3)
    with pytest.raises(ValueError, match="already has a reservation"):
        await reserve(quota, "jobretry", images=3)


async def test_a_job_that_delivers_after_its_reservation_expired_is_still_charged(
    quota: QuotaService, clock: Clock
) -> None:
    await reserve(quota, "jobhung1", images=2)
    clock.advance(hours=2)
    assert await quota.settle_expired() == ["jobhung1"]

    await quota.commit("jobhung1", produced=2)
    await quota.commit("jobhung1", produced=2)

    assert (await status(quota)).used == 2
    charge = (await quota.history(GUILD, USER))[0]
    assert charge.kind is LedgerKind.CHARGE and "expired" in (charge.reason or "")


async def test_a_job_ending_after_midnight_is_charged_to_the_day_it_began(
    quota: QuotaService, clock: Clock
) -> None:
    clock.set(2025, 1, 15, 23, 58)
    await reserve(quota, "jobnight", images=4)
    assert (await status(quota)).remaining == 6

    clock.set(2025, 1, 16, 0, 2)
    assert (await status(quota)).remaining == 10  # the new day is untouched by yesterday's hold
    await quota.commit("jobnight", produced=4)

    assert (await status(quota)).used == 0
    clock.set(2025, 1, 15, 23, 59)
    assert (await status(quota)).used == 4


async def test_reserving_nothing_is_a_programming_error(quota: QuotaService) -> None:
    with pytest.raises(ValueError):
        await reserve(quota, "jobzero0", images=0)


async def test_reservations_expire_after_the_configured_ttl(
    make_service: ServiceFactory, clock: Clock
) -> None:
    quota = make_service(reservation_ttl=timedelta(minutes=10))
    await reserve(quota, "jobttl01", images=1)
    stored = await quota.reservation("jobttl01")
    assert stored.expires_at - stored.reserved_at == timedelta(minutes=10)
    clock.advance(minutes=10)
    assert await quota.settle_expired() == ["jobttl01"]


async def test_reservations_from_five_processes_sharing_one_sqlite_file_grant_exactly_ten(tmp_path) -> None:
    """Separate Database handles have separate in-process locks: only SQLite's own lock guards them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    handles = [Database(url) for _ in range(5)]
    await handles[0].migrate()
    services = [QuotaService(handle, global_default_limit=10) for handle in handles]
    try:
        outcomes = await asyncio.gather(
            *(reserve(services[n % 5], f"job{n:05d}") for n in range(50)), return_exceptions=True
        )
    finally:
        for handle in handles:
            await handle.close()
    granted = [outcome for outcome in outcomes if isinstance(outcome, QuotaStatus)]
    assert len(granted) == 10, outcomes
    assert all(isinstance(outcome, QuotaStatus | QuotaExceeded) for outcome in outcomes), outcomes
