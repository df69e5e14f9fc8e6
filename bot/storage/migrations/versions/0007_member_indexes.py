"""Indexes that keep a job's reads to its own member's rows.

A claim sums the relay slots of all running jobs (read from `ix_jobs_state_lease` alone) and
counts each candidate's member's running jobs; a reservation sums the member's live
reservations in the window. With only `(requester_id, state)` and `(guild_id, user_id, state)`
SQLite's planner preferred the indexes with a range on time, which hold every member's rows:
each job then read every running job, or every live reservation of its guild (a burst of
1,000: 0.7 ms of a claim, 0.2 ms of a reservation). The time column now ends the member's
indexes, so they win.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_state_lease", "jobs", ["state", "lease_expires_at", "relay_slots"])
    op.create_index("ix_jobs_requester_state_lease", "jobs", ["requester_id", "state", "lease_expires_at"])
    op.drop_index("ix_jobs_requester_state", "jobs")
    op.create_index("ix_quota_reservations_member_window", "quota_reservations",
                    ["guild_id", "user_id", "state", "reserved_at"])
    op.drop_index("ix_quota_reservations_member", "quota_reservations")


def downgrade() -> None:
    op.create_index("ix_quota_reservations_member", "quota_reservations", ["guild_id", "user_id", "state"])
    op.drop_index("ix_quota_reservations_member_window", "quota_reservations")
    op.create_index("ix_jobs_requester_state", "jobs", ["requester_id", "state"])
    op.drop_index("ix_jobs_requester_state_lease", "jobs")
    op.drop_index("ix_jobs_state_lease", "jobs")
