"""Job rows: the durable queue, and everything needed to finish a job in any process.

A job is `queued -> running -> delivered | failed`. The row holds the request, where to deliver
(`delivery`), the images the relay produced so far (`job_results`, while the job is unfinished;
`drop_finished_results` frees them after it ends) and every message posted with its images
(`job_messages`), so a job survives a crash, a deploy or a lost lease, and a result's buttons
and `/show` keep working after any restart.

A running job carries a lease: the instance that owns it (`lease_owner`) and until when. The
owner renews it (`heartbeat`); a job whose lease ran out belongs to a process that died and is
queued again for any process to resume (`requeue_abandoned`). A process that restarts under its
stable instance name takes back its own earlier jobs at once, without waiting for the expiry.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.clock import utcnow
from bot.core.jobs.naming import new_job_id
from bot.core.jobs.spec import StoredRequest
from bot.core.relay.models import GeneratedImage
from bot.storage import prepared
from bot.storage.database import Database, one_of, upsert
from bot.storage.tables import job_messages, job_results, jobs

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
    attempts: int = 0  # relay calls made for the job (a resumed job may make one more)
    # Where to deliver, written and read by the Discord side only. It may hold an interaction
    # token (a credential): never in a repr, a log or a message.
    delivery: Mapping[str, Any] | None = field(default=None, repr=False)
    relay_slots: int = 1
    announced: bool = True
    # Not a column: set on the records `claim` returns for jobs never run before (their first
    # relay call is counted by the claim itself, saving a write).
    fresh: bool = False

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
            delivery=row.get("delivery"),
            relay_slots=row.get("relay_slots") or 1,
            announced=bool(row.get("announced", True)),
        )



DEFAULT_OWNER = "local"
CLAIM_LOCK = 0x5EED_0001  # the advisory lock that serialises claims on PostgreSQL
CLAIM_WINDOW = 200  # queued jobs a claim looks at: members at their limit are skipped
DEFAULT_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class PostedMessage:
    """A message carrying images of a job: a result (`kind` "result") or a `/show` re-post."""

    message_id: int
    channel_id: int | None
    kind: str
    images: list[int]


# Built once and run with named parameters: these run for every job, and building a statement
# costs more than running it. (In an UPDATE a bound name may not be a column's: hence `b_`.)
_CLAIM_LOCK = sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK))
_CLAIM_LOCK_IF_FREE = sa.select(sa.func.pg_try_advisory_xact_lock(CLAIM_LOCK))
_RUNNING = jobs.alias("running")
_LIVE = sa.and_(_RUNNING.c.state == JobState.RUNNING.value, _RUNNING.c.lease_expires_at > sa.bindparam("now"))
# One read for all a claim weighs: the oldest queued jobs, each with how many jobs its member
# has running (ix_jobs_requester_state_lease: that member's rows only) and, the same on every row,
# the relay slots all running jobs hold (ix_jobs_state_lease: read from the index alone).
_QUEUED = (sa.select(jobs.c.id, jobs.c.requester_id, jobs.c.relay_slots, jobs.c.attempts,
                     sa.select(sa.func.count()).where(_RUNNING.c.requester_id == jobs.c.requester_id, _LIVE)
                     .scalar_subquery(),
                     sa.select(sa.func.coalesce(sa.func.sum(_RUNNING.c.relay_slots), 0)).where(_LIVE)
                     .scalar_subquery())
           .where(jobs.c.state == JobState.QUEUED.value)
           .order_by(jobs.c.created_at, jobs.c.id)
           .limit(CLAIM_WINDOW)
           .with_for_update(skip_locked=True, of=jobs))


@functools.cache
def _start(count: int) -> sa.Update:
    """Start `count` claimed jobs (parameters id0, id1, …): one statement per count, compiled once
    (an "expanding" IN list would be rewritten into the SQL at every execution). At most
    CLAIM_WINDOW of them."""
    ids = [sa.bindparam(f"id{index}", type_=jobs.c.id.type) for index in range(count)]
    return jobs.update().where(jobs.c.id.in_(ids)).values(
        state=JobState.RUNNING.value, lease_owner=sa.bindparam("owner"),
        lease_expires_at=sa.bindparam("b_lease_expires_at"),
        started_at=sa.func.coalesce(jobs.c.started_at, sa.bindparam("now", type_=jobs.c.started_at.type)),
        attempts=sa.case((jobs.c.attempts == 0, 1), else_=jobs.c.attempts),
    ).returning(*jobs.c)  # the claimed rows, without a second read


_DELIVERED = jobs.update().where(jobs.c.id == sa.bindparam("job_id"), one_of(jobs.c.state, UNFINISHED)).values(
    state=JobState.DELIVERED.value, error=None, finished_at=sa.bindparam("b_finished_at"), dedupe_key=None,
    result_message_ids=sa.bindparam("b_result_message_ids"), images=sa.bindparam("b_images"),
    announced=True, delivery=None, lease_owner=None, lease_expires_at=None)
# Not in a job's own last transaction: on SQLite a DELETE, and the COMMIT after it, go to the
# SQLite thread (freeing a set's images rewrites thousands of pages); a sweep does it for all.
_DROP_FINISHED_RESULTS = job_results.delete().where(~sa.exists().where(
    jobs.c.id == job_results.c.job_id, one_of(jobs.c.state, UNFINISHED)))
_KEPT_RESULTS = (
    sa.select(job_results).join(jobs, jobs.c.id == job_results.c.job_id)
    .where(job_results.c.job_id == sa.bindparam("job_id"), one_of(jobs.c.state, UNFINISHED))
    .order_by(job_results.c.image_index)
)


@dataclass(frozen=True)
class Claim:
    """What a claim started, and whether it left queued jobs behind (so room made later is
    worth another claim; `True` also when the claim could not look)."""

    jobs: list[JobRecord]
    waiting: bool


class JobStore:
    """Job rows, as seen by one instance: the jobs it claims are leased to `owner` for `lease` at a time.

    A queued job has no owner: any instance sharing the database may claim it (`claim`). A
    running job is leased; its owner renews the lease (`heartbeat`), and a job whose lease ran
    out, or which its owner handed back, is queued again (`requeue_abandoned`, `hand_back`).
    """

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
        delivery: Mapping[str, Any] | None = None,
        relay_slots: int = 1,
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
                "lease_owner": None,
                "lease_expires_at": None,
                "attempts": 0,
                "delivery": dict(delivery) if delivery is not None else None,
                "relay_slots": max(1, relay_slots),
                "announced": False,
            }
            # ON CONFLICT DO NOTHING: a taken key or id leaves the row out instead of failing,
            # which on PostgreSQL would abort the caller's whole transaction.
            async with self._db.join(conn) as joined:
                stored = (await prepared.run(joined, upsert(self._db.dialect, jobs, key=()), values)).rowcount
            if stored:
                return JobRecord.from_row(values)
            if dedupe_key is not None:
                existing = await self._id_for_dedupe_key(dedupe_key, conn)
                if existing is not None:
                    raise DuplicateJob(existing)
            # else the random id collided (or the key's job ended meanwhile): draw another
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

    # --- the queue ------------------------------------------------------------------------------

    async def claim(self, *, capacity: int, relay_slots: int, per_user: int,
                    conn: AsyncConnection | None = None, wait: bool = True) -> Claim:
        """Start the oldest queued jobs that may run now, leased to this instance.

        At most `capacity` jobs (this process's free room). A job never run before counts its
        first relay call here (`fresh`). Across every instance sharing the
        database, running jobs hold at most `relay_slots` relay slots, and a member has at most
        `per_user` running; a member at their limit is skipped, not waited for (FIFO otherwise).
        Claims are serialised (PostgreSQL: a transaction-level advisory lock, and the candidate
        rows are taken `FOR UPDATE SKIP LOCKED`; SQLite: its write lock), so the counts they read
        cannot change under them. Inside `conn` (the transaction that queues a job) the job can
        start without a write of its own. Without `wait`, a claim that would queue behind another
        (PostgreSQL: the lock is held until that claim's transaction ends) claims nothing and
        reports jobs waiting: under a burst each submit would otherwise wait for the one before.
        """
        if capacity <= 0:
            return Claim([], waiting=True)
        async with self._db.join(conn) as conn:
            if conn.dialect.name == "postgresql":
                locked = (await prepared.run(conn, _CLAIM_LOCK if wait else _CLAIM_LOCK_IF_FREE)).scalar()
                if not wait and not locked:
                    return Claim([], waiting=True)
            now = self._clock()
            candidates = (await prepared.run(conn, _QUEUED, {"now": now})).rows
            if not candidates:
                return Claim([], waiting=False)
            running = {requester_id: int(count) for _, requester_id, _, _, count, _ in candidates}
            free = relay_slots - int(candidates[0][5])
            if free <= 0:
                return Claim([], waiting=True)
            picked: list[str] = []
            fresh: set[str] = set()
            for job_id, requester_id, slots, attempts, _, _ in candidates:
                if len(picked) == capacity:
                    break
                if running.get(requester_id, 0) >= per_user:
                    continue
                slots = min(slots, relay_slots)
                if slots > free:
                    break  # the oldest job that may run waits for room; younger ones do not jump it
                picked.append(job_id)
                if not attempts:
                    fresh.add(job_id)
                free -= slots
                running[requester_id] = running.get(requester_id, 0) + 1
            if not picked:
                return Claim([], waiting=True)
            ids = {f"id{index}": job_id for index, job_id in enumerate(picked)}
            rows = (await prepared.run(conn, _start(len(picked)), {
                **ids, "owner": self._owner, "now": now, "b_lease_expires_at": now + self._lease,
            })).mappings()
        by_id = {row["id"]: dataclasses.replace(JobRecord.from_row(row), fresh=row["id"] in fresh) for row in rows}
        left = len(picked) < len(candidates) or len(candidates) == CLAIM_WINDOW
        return Claim([by_id[job_id] for job_id in picked], waiting=left)

    async def count_attempt(self, job_id: str) -> int:
        """Count one more relay call for the job; returns how many it has made with this one."""
        async with self._db.transaction() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id).values(attempts=jobs.c.attempts + 1))
            return int((await conn.execute(sa.select(jobs.c.attempts).where(jobs.c.id == job_id))).scalar_one())

    async def queue_positions(self) -> dict[str, int]:
        """Every queued job's 1-based place in the queue (all instances)."""
        query = (sa.select(jobs.c.id).where(jobs.c.state == JobState.QUEUED.value)
                 .order_by(jobs.c.created_at, jobs.c.id))
        async with self._db.engine.connect() as conn:
            ids = (await conn.execute(query)).scalars().all()
        return {job_id: position for position, job_id in enumerate(ids, start=1)}

    async def heartbeat(self) -> int:
        """Renew the lease of every running job this instance owns; returns how many."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                jobs.update()
                .where(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_owner == self._owner)
                .values(lease_expires_at=self._clock() + self._lease)
            )
        return result.rowcount

    async def hand_back(self, job_ids: Sequence[str] | None = None) -> int:
        """Queue this instance's running jobs (or those of `job_ids`) again at once, for any
        instance to resume: what a shutdown does with the jobs it could not finish."""
        conditions = [jobs.c.state == JobState.RUNNING.value, jobs.c.lease_owner == self._owner]
        if job_ids is not None:
            conditions.append(jobs.c.id.in_(list(job_ids)))
        async with self._db.transaction() as conn:
            result = await conn.execute(
                jobs.update().where(*conditions)
                .values(state=JobState.QUEUED.value, lease_owner=None, lease_expires_at=None)
            )
        return result.rowcount

    async def requeue_abandoned(self, *, own: bool) -> list[JobRecord]:
        """Queue again the running jobs no live process holds: their lease ran out (or they have
        none); with `own`, also this instance's (its earlier run's, at start). Returns them."""
        orphaned = sa.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_expires_at < self._clock())
        if own:
            orphaned = sa.or_(orphaned, jobs.c.lease_owner == self._owner)
        condition = sa.and_(jobs.c.state == JobState.RUNNING.value, orphaned)
        async with self._db.transaction() as conn:
            rows = (await conn.execute(sa.select(jobs).where(condition))).mappings().all()
            if rows:
                await conn.execute(
                    jobs.update().where(jobs.c.id.in_([row["id"] for row in rows]), condition)
                    .values(state=JobState.QUEUED.value, lease_owner=None, lease_expires_at=None)
                )
        return [JobRecord.from_row(row) for row in rows]

    # --- what a job produced and posted --------------------------------------------------------

    async def save_result(self, job_id: str, image: GeneratedImage) -> None:
        """Keep an image the relay produced until the job ends (a resumed job posts it from here)."""
        keep = upsert(self._db.dialect, job_results, key=("job_id", "image_index"),
                      update=("content", "content_type", "size", "created_at"))
        async with self._db.single_statement() as conn:
            await prepared.run(conn, keep, {"job_id": job_id, "image_index": image.index, "content": image.content,
                                            "content_type": image.content_type, "size": image.size,
                                            "created_at": self._clock()})

    async def results(self, job_id: str) -> list[GeneratedImage]:
        """The images kept for an unfinished job, by index (none once it has ended)."""
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(_KEPT_RESULTS, {"job_id": job_id})).mappings().all()
        return [GeneratedImage(index=row["image_index"], content=row["content"], size=row["size"],
                               content_type=row["content_type"]) for row in rows]

    async def drop_finished_results(self) -> int:
        """Free the kept images of every job that has ended (the bot sweeps every few seconds);
        returns how many were dropped."""
        async with self._db.transaction() as conn:
            return (await conn.execute(_DROP_FINISHED_RESULTS)).rowcount

    async def record_posted(
        self,
        job_id: str,
        message_id: int,
        images: Sequence[Mapping[str, Any]],
        *,
        channel_id: int | None,
        kind: str = "result",
        conn: AsyncConnection,
    ) -> None:
        """Record that `message_id` carries `images` of the job (more of them, if it was edited).

        A result message also joins the job's own list of results (what buttons and `/show`
        read); a `/show` re-post only maps back to the job. Call it in the transaction that
        charges the images.
        """
        now = self._clock()
        existing = (await conn.execute(
            sa.select(job_messages.c.images).where(job_messages.c.message_id == message_id)
        )).scalar_one_or_none()
        indices = sorted({int(image["index"]) for image in images} | set(existing or []))
        if existing is None:
            await conn.execute(job_messages.insert().values(
                message_id=message_id, job_id=job_id, channel_id=channel_id, kind=kind, images=indices, created_at=now))
        else:
            await conn.execute(job_messages.update().where(job_messages.c.message_id == message_id)
                               .values(images=indices))
        if kind != "result":
            return
        query = sa.select(jobs.c.result_message_ids, jobs.c.images).where(jobs.c.id == job_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).one()
        message_ids = list(row.result_message_ids)
        if message_id not in message_ids:
            message_ids.append(message_id)
        known = {int(image["index"]) for image in row.images}
        described = [*row.images, *(dict(image) for image in images if int(image["index"]) not in known)]
        await conn.execute(jobs.update().where(jobs.c.id == job_id)
                           .values(result_message_ids=message_ids, images=described))

    async def job_for_message(self, message_id: int) -> JobRecord | None:
        """The job whose images `message_id` carries (a result or a `/show` re-post), if any."""
        query = sa.select(jobs).join(job_messages, job_messages.c.job_id == jobs.c.id).where(
            job_messages.c.message_id == message_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return JobRecord.from_row(row) if row is not None else None

    async def messages_of(self, job_id: str) -> list[PostedMessage]:
        """Every message recorded with the job's images, results first, then re-posts, oldest first."""
        # "result" sorts before "show".
        query = (sa.select(job_messages).where(job_messages.c.job_id == job_id)
                 .order_by(job_messages.c.kind, job_messages.c.created_at, job_messages.c.message_id))
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [PostedMessage(row["message_id"], row["channel_id"], row["kind"], list(row["images"])) for row in rows]

    async def update_delivery(self, job_id: str, delivery: Mapping[str, Any]) -> None:
        """Replace an unfinished job's delivery record (e.g. once its status message exists)."""
        async with self._db.transaction() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id, one_of(jobs.c.state, UNFINISHED))
                               .values(delivery=dict(delivery)))

    async def finish(
        self,
        job_id: str,
        state: JobState,
        error: str | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Record the final state; False (and no change) if the job had finished already.

        The job's `dedupe_key` is released: a key only guards against a second job while the
        first is active (a double click), so the same button works again once it has finished.
        Its kept results stop counting (`drop_finished_results` frees them); its delivery record
        (which may hold a token) and its lease stay until `announced`, so a crash before the
        requester is told leaves that to the next start.
        """
        if not JobState(state).finished:
            raise ValueError(f"finish() takes a final state, not {state!r}")
        return await self._transition(
            job_id, UNFINISHED, conn, state=JobState(state).value, error=error, finished_at=self._clock(),
            dedupe_key=None,
        )

    async def finish_posted(
        self,
        job_id: str,
        message_id: int,
        posted: Sequence[Mapping[str, Any]],
        *,
        channel_id: int | None,
        result_message_ids: Sequence[int],
        images: Sequence[Mapping[str, Any]],
        conn: AsyncConnection,
    ) -> bool:
        """The job's last message went out with its summary: record it (`posted`: its images),
        end the job as delivered with its results (`result_message_ids`, `images`: all of them)
        and note its requester was told, in the caller's transaction (the one that charges).

        What `record_posted`, `finish` and `announced` do apart, in two statements; False (the
        job's row untouched) if it had finished already.
        """
        indices = sorted(int(image["index"]) for image in posted)
        await prepared.run(conn, upsert(self._db.dialect, job_messages, key=("message_id",), update=("images",)),
                           {"message_id": message_id, "job_id": job_id, "channel_id": channel_id, "kind": "result",
                            "images": indices, "created_at": self._clock()})
        result = await prepared.run(conn, _DELIVERED, {
            "job_id": job_id, "b_finished_at": self._clock(), "b_result_message_ids": list(result_message_ids),
            "b_images": [dict(image) for image in images]})
        return bool(result.rowcount)

    async def announced(self, job_id: str) -> None:
        """The requester was told how the job ended: drop its delivery record and lease."""
        async with self._db.transaction() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id).values(
                announced=True, delivery=None, lease_owner=None, lease_expires_at=None))

    async def unannounced(self, *, own: bool) -> list[JobRecord]:
        """Finished jobs whose requester was not told, of processes that stopped (or, with `own`,
        of this instance's earlier run): a crash came between the end and the telling."""
        orphaned = sa.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_expires_at < self._clock())
        if own:
            orphaned = sa.or_(orphaned, jobs.c.lease_owner == self._owner)
        return await self._select(jobs.c.announced.is_(False), ~one_of(jobs.c.state, UNFINISHED), orphaned)

    async def _transition(
        self, job_id: str, from_states: tuple[str, ...], conn: AsyncConnection | None = None, **values: Any
    ) -> bool:
        async with self._db.join(conn) as conn:
            result = await conn.execute(
                jobs.update().where(jobs.c.id == job_id, one_of(jobs.c.state, from_states)).values(**values)
            )
            if result.rowcount:
                return True
            exists = (await conn.execute(sa.select(jobs.c.id).where(jobs.c.id == job_id))).first()
        if exists is None:
            raise UnknownJob(job_id)
        return False

    async def unfinished(self) -> list[JobRecord]:
        """Jobs queued or running in any process, oldest first."""
        return await self._select(one_of(jobs.c.state, UNFINISHED))

    async def active_for_user(self, requester_id: int, guild_id: int | None) -> list[JobRecord]:
        """The requester's queued or running jobs in this guild (`None`: direct messages)."""
        guild = jobs.c.guild_id.is_(None) if guild_id is None else jobs.c.guild_id == guild_id
        return await self._select(one_of(jobs.c.state, UNFINISHED), jobs.c.requester_id == requester_id, guild)

    async def _select(self, *conditions: sa.ColumnElement[bool]) -> list[JobRecord]:
        query = sa.select(jobs).where(*conditions).order_by(jobs.c.created_at, jobs.c.id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [JobRecord.from_row(row) for row in rows]
