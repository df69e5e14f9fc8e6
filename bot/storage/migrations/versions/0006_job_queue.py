"""The durable job queue: where to deliver, relay slots, results as they arrive, posted messages.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("delivery", sa.JSON, nullable=True))
        batch.add_column(sa.Column("relay_slots", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("announced", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created_at"])
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(16), primary_key=True),
        sa.Column("image_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "job_messages",
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("job_id", sa.String(16), nullable=False, index=True),
        sa.Column("channel_id", sa.BigInteger, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("images", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_messages")
    op.drop_table("job_results")
    op.drop_index("ix_jobs_state_created", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("announced")
        batch.drop_column("relay_slots")
        batch.drop_column("delivery")
