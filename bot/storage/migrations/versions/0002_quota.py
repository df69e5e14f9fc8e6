"""Quota: per-guild settings, role and member rules, live reservations and the ledger.

The ledger is append-only: every reservation, charge, release, grant, reset and
moderator change is one row, so any number the bot shows can be explained.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEDGER_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quota_guilds",
        sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("default_limit", sa.Integer, nullable=True),
        sa.Column("period", sa.String(16), nullable=True),
        sa.Column("server_cap", sa.Integer, nullable=True),
        sa.Column("audit_channel_id", sa.BigInteger, nullable=True),
        sa.Column("moderator_role_id", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "quota_roles",
        sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("role_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("image_limit", sa.Integer, nullable=True),
        sa.Column("exempt", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "quota_members",
        sa.Column("guild_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("image_limit", sa.Integer, nullable=True),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("job_id", sa.String(16), primary_key=True),
        sa.Column("guild_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("charged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_quota_reservations_member", "quota_reservations", ["guild_id", "user_id", "state"])
    op.create_index("ix_quota_reservations_guild", "quota_reservations", ["guild_id", "state", "reserved_at"])
    op.create_index("ix_quota_reservations_expiry", "quota_reservations", ["state", "expires_at"])
    op.create_table(
        "quota_ledger",
        sa.Column("id", LEDGER_ID, primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount", sa.Integer, nullable=True),
        sa.Column("job_id", sa.String(16), nullable=True),
        sa.Column("moderator_id", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_quota_ledger_member", "quota_ledger", ["guild_id", "user_id", "effective_at"])
    op.create_index("ix_quota_ledger_guild_kind", "quota_ledger", ["guild_id", "kind", "effective_at"])
    op.create_index("ix_quota_ledger_job", "quota_ledger", ["job_id"])


def downgrade() -> None:
    op.drop_table("quota_ledger")
    op.drop_table("quota_reservations")
    op.drop_table("quota_members")
    op.drop_table("quota_roles")
    op.drop_table("quota_guilds")
