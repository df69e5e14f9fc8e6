"""Job rows: a generation request and everything needed to act on its result later.

Because the row holds the request, the requester and the result's message ids, a result's
buttons keep working after a restart, and jobs a crash left `queued`/`running` can be
settled on start (see `JobStore.abandoned`).

Every unfinished job carries a lease: the instance that owns it (`owner`) and until when.
The owner renews it (`heartbeat`) while the job waits or runs; a job whose lease has run out
belongs to a process that died, and any process may settle it. A process that restarts under
its stable instance name knows its own earlier jobs at once, without waiting for the expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.clock import utcnow
from bot.core.jobs.naming import new_job_id
from bot.core.jobs.spec import StoredRequest
from bot.storage.database import Database
from bot.storage.tables import jobs

ID_ATTEMPTS = 5


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DELIVERED = "delivered"
    FAILED = "failed"  # nothing was delivered

    @property
    def finished(self) -> bool:
        return self in (JobState.DELIVERED, JobState.FAILED)


UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value)


class DuplicateJob(Exception):
    """A job with this dedupe key exists already (a double click or a retried interaction)."""

    def __init__(self, existing_job_id: str) -> None:
        super().__init__(f"a job with this dedupe key exists already: {existing_job_id}")
        self.existing_job_id = existing_job_id


class UnknownJob(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    requester_id: int
    guild_id: int | None
    channel_id: int | None
    request: StoredRequest
    state: JobState
    error: str | None
    parent_job_id: str | None
    source_message_id: int | None
    result_message_ids: list[int]
    images: list[dict[str, Any]]
    dedupe_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        return cls(
            id=row["id"],
            kind=row["kind"],
            requester_id=row["requester_id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            request=StoredRequest.from_json(row["request"]),
            state=JobState(row["state"]),
            error=row["error"],
            parent_job_id=row["parent_job_id"],
            source_message_id=row["source_message_id"],
            result_message_ids=list(row["result_message_ids"]),
            images=list(row["images"]),
            dedupe_key=row["dedupe_key"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            lease_owner=row["lease_owner"],
            lease_expires_at=row["lease_expires_at"],
            attempts=row["attempts"],
        )



DEFAULT_OWNER = "local"
DEFAULT_LEASE = timedelta(seconds=30)


class JobStore:
    """Job rows of one instance: jobs it creates are leased to `owner` for `lease` at a time."""

    def __init__(
        self,
        db: Database,
        *,
        owner: str = DEFAULT_OWNER,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._owner = owner
        self._lease = lease
        self._clock = clock

    @property
    def owner(self) -> str:
        return self._owner

    async def create(
        self,
        *,
        kind: str,
        requester_id: int,
        guild_id: int | None,
        channel_id: int | None,
        request: StoredRequest,
        parent_job_id: str | None = None,
        source_message_id: int | None = None,
        dedupe_key: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> JobRecord:
        """Store a new queued job (inside `conn`'s transaction when given).

        Raises `DuplicateJob` when `dedupe_key` is held by an unfinished job: the unique index
        decides, so two concurrent creates with one key yield one job on either backend.
        `finish` releases the key.
        """
        for _ in range(ID_ATTEMPTS):
            values: dict[str, Any] = {
                "id": new_job_id(),
                "kind": kind,
                "requester_id": requester_id,
                "guild_id": guild_id,
                "channel_id": channel_id,
                "request": request.to_json(),
                "state": JobState.QUEUED.value,
                "error": None,
                "parent_job_id": parent_job_id,
                "source_message_id": source_message_id,
                "result_message_ids": [],
                "images": [],
                "dedupe_key": dedupe_key,
                "created_at": self._clock(),
                "started_at": None,
                "finished_at": None,
                "lease_owner": self._owner,
                "lease_expires_at": self._clock() + self._lease,
                "attempts": 0,
            }
            try:
                async with self._db.join(conn) as joined:
                    if conn is not None and self._db.dialect == "postgresql":
                        # A failed insert would abort the caller's whole transaction: fence it.
                        async with joined.begin_nested():
                            await joined.execute(jobs.insert().values(**values))
                    else:
                        await joined.execute(jobs.insert().values(**values))
            except IntegrityError:
                if dedupe_key is not None:
                    existing = await self._id_for_dedupe_key(dedupe_key, conn)
                    if existing is not None:
                        raise DuplicateJob(existing) from None
                continue  # the random id collided: draw another
            return JobRecord.from_row(values)
        raise RuntimeError(f"could not draw an unused job id in {ID_ATTEMPTS} attempts")

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction to pass as `conn` (e.g. to settle a job and its quota together)."""
        return self._db.transaction()

    async def _id_for_dedupe_key(self, dedupe_key: str, conn: AsyncConnection | None) -> str | None:
        query = sa.select(jobs.c.id).where(jobs.c.dedupe_key == dedupe_key)
        if conn is not None:
            return (await conn.execute(query)).scalar_one_or_none()
        async with self._db.engine.connect() as own:
            return (await own.execute(query)).scalar_one_or_none()

    async def get(self, job_id: str) -> JobRecord | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().first()
        return JobRecord.from_row(row) if row is not None else None

    async def mark_running(self, job_id: str) -> bool:
        """Move a queued job to running under this instance's lease, counting the attempt;
        False (and no change) if it is not queued."""
        now = self._clock()
        return await self._transition(
            job_id, (JobState.QUEUED.value,), state=JobState.RUNNING.value, started_at=now,
            lease_owner=self._owner, lease_expires_at=now + self._lease, attempts=jobs.c.attempts + 1,
        )

    async def heartbeat(self) -> int:
        """Renew the lease of every unfinished job this instance owns; returns how many."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                jobs.update()
                .where(jobs.c.state.in_(UNFINISHED), jobs.c.lease_owner == self._owner)
                .values(lease_expires_at=self._clock() + self._lease)
            )
        return result.rowcount

    async def finish(
        self,
        job_id: str,
        state: JobState,
        error: str | None = None,
        *,
        message_ids: Sequence[int] = (),
        images: Sequence[Mapping[str, Any]] = (),
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Record the final state and the messages and images it posted; False (and no change)
        if the job had finished already.

        The job's `dedupe_key` is released: a key only guards against a second job while the
        first is active (a double click), so the same button works again once it has finished.
        """
        if not JobState(state).finished:
            raise ValueError(f"finish() takes a final state, not {state!r}")
        return await self._transition(
            job_id, UNFINISHED, conn, state=JobState(state).value, error=error, finished_at=self._clock(),
            dedupe_key=None, result_message_ids=list(message_ids), images=[dict(image) for image in images],
            lease_owner=None, lease_expires_at=None,
        )

    async def _transition(
        self, job_id: str, from_states: tuple[str, ...], conn: AsyncConnection | None = None, **values: Any
    ) -> bool:
        async with self._db.join(conn) as conn:
            result = await conn.execute(
                jobs.update().where(jobs.c.id == job_id, jobs.c.state.in_(from_states)).values(**values)
            )
            if result.rowcount:
                return True
            exists = (await conn.execute(sa.select(jobs.c.id).where(jobs.c.id == job_id))).first()
        if exists is None:
            raise UnknownJob(job_id)
        return False

    async def unfinished(self) -> list[JobRecord]:
        """Jobs queued or running in any process, oldest first."""
        return await self._select(jobs.c.state.in_(UNFINISHED))

    async def abandoned(self, *, own: bool) -> list[JobRecord]:
        """Unfinished jobs no live process owns, oldest first: their lease ran out (or they have
        none, from before leases); with `own`, also this instance's (its earlier run's, at start)."""
        orphaned = sa.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_expires_at < self._clock())
        if own:
            orphaned = sa.or_(orphaned, jobs.c.lease_owner == self._owner)
        return await self._select(jobs.c.state.in_(UNFINISHED), orphaned)

    async def active_for_user(self, requester_id: int, guild_id: int | None) -> list[JobRecord]:
        """The requester's queued or running jobs in this guild (`None`: direct messages)."""
        guild = jobs.c.guild_id.is_(None) if guild_id is None else jobs.c.guild_id == guild_id
        return await self._select(jobs.c.state.in_(UNFINISHED), jobs.c.requester_id == requester_id, guild)

    async def _select(self, *conditions: sa.ColumnElement[bool]) -> list[JobRecord]:
        query = sa.select(jobs).where(*conditions).order_by(jobs.c.created_at, jobs.c.id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [JobRecord.from_row(row) for row in rows]
