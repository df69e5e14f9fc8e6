"""Member preferences: each member's own defaults (`/prefer`), one row per member across servers.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_preferences",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("size", sa.String(16), nullable=True),
        sa.Column("image_count", sa.Integer, nullable=True),
        sa.Column("watermark", sa.Boolean, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("member_preferences")
