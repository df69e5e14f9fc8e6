"""SQLAlchemy Core tables mirroring the alembic migrations (the migrations own the schema).

Keep each table here in step with `migrations/versions`; `tests/storage/test_tables.py`
checks that the columns match what the migrations create.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends.

    SQLite has no time zone type: values are stored as UTC without an offset and come back
    with `tzinfo=UTC` attached. Naive datetimes are refused so a local time never sneaks in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the text is written and read here in one step, skipping the DATETIME type's own
    # processing behind it: that built a dict and %-formatted it for every value (a job binds
    # about twenty), 2 % of a job's CPU. Same text as SQLAlchemy's DATETIME writes
    # ("2026-12-03 12:00:00.000000": the stored values compare as before), read back with
    # `datetime.fromisoformat` (which also takes SQLite's own CURRENT_TIMESTAMP form).

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, datetime):  # an expression SQLite typed itself
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return from_text


metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
LEDGER_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Revision 0001.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("requester_id", sa.BigInteger, nullable=False),
    sa.Column("guild_id", sa.BigInteger, nullable=True),
    sa.Column("channel_id", sa.BigInteger, nullable=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("parent_job_id", sa.String(16), nullable=True),
    sa.Column("source_message_id", sa.BigInteger, nullable=True),
    sa.Column("result_message_ids", sa.JSON, nullable=False),
    sa.Column("images", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(120), nullable=True, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # Revision 0003: the lease of an unfinished job (see `bot/storage/jobs.py`).
    sa.Column("lease_owner", sa.String(120), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Revision 0006: where to deliver (opaque to the core; holds an interaction token: a
    # credential, never logged) and how many relay calls the job holds while it runs.
    sa.Column("delivery", sa.JSON, nullable=True),
    sa.Column("relay_slots", sa.Integer, nullable=False, server_default="1"),
    # False from the job's end until its requester was told (the reply edited): a crash in
    # between leaves the telling to the next start.
    sa.Column("announced", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_jobs_state_created", "state", "created_at"),
    # Revision 0007 (the reads every claim makes; see its docstring for why these shapes).
    sa.Index("ix_jobs_state_lease", "state", "lease_expires_at", "relay_slots"),
    sa.Index("ix_jobs_requester_state_lease", "requester_id", "state", "lease_expires_at"),
)

# Revision 0002.
# The quota tables look alike on purpose: one row per guild, role or member of a guild, each
# with its own limit columns; a shared helper would hide the schema a reader comes here to see.
quota_guilds = sa.Table(
    "quota_guilds",
    metadata,
    sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("default_limit", sa.Integer, nullable=True),
    sa.Column("period", sa.String(16), nullable=True),
    sa.Column("server_cap", sa.Integer, nullable=True),
    sa.Column("audit_channel_id", sa.BigInteger, nullable=True),
    sa.Column("moderator_role_id", sa.BigInteger, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

quota_roles = sa.Table(
    "quota_roles",
    metadata,
    sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("role_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("image_limit", sa.Integer, nullable=True),
    sa.Column("exempt", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

quota_members = sa.Table(
    "quota_members",
    metadata,
    sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("image_limit", sa.Integer, nullable=True),
    sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

quota_reservations = sa.Table(
    "quota_reservations",
    metadata,
    sa.Column("job_id", sa.String(16), primary_key=True),
    sa.Column("guild_id", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("charged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reserved_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("settled_at", UTCDateTime, nullable=True),
)

quota_ledger = sa.Table(
    "quota_ledger",
    metadata,
    sa.Column("id", LEDGER_ID, primary_key=True, autoincrement=True),
    sa.Column("guild_id", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.BigInteger, nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("amount", sa.Integer, nullable=True),
    sa.Column("job_id", sa.String(16), nullable=True),
    sa.Column("moderator_id", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("effective_at", UTCDateTime, nullable=False),
)

# Revision 0004.
member_preferences = sa.Table(
    "member_preferences",
    metadata,
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("size", sa.String(16), nullable=True),
    sa.Column("image_count", sa.Integer, nullable=True),
    sa.Column("watermark", sa.Boolean, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=True),
)

# Revision 0005.
command_sync = sa.Table(
    "command_sync",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("synced_at", UTCDateTime, nullable=False),
)

# Revision 0006: a running job's images as they arrive from the relay (deleted when it ends),
# so a job interrupted after the relay answered is delivered without a second relay call.
job_results = sa.Table(
    "job_results",
    metadata,
    sa.Column("job_id", sa.String(16), primary_key=True),
    sa.Column("image_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Every message that carries a job's images (results, /show re-posts): a message maps back to
# its job, and a resumed job knows what it posted already.
job_messages = sa.Table(
    "job_messages",
    metadata,
    sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("job_id", sa.String(16), nullable=False, index=True),
    sa.Column("channel_id", sa.BigInteger, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("images", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
