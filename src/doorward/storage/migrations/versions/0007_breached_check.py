"""The breached-password check at login: when it last ran and since when the password is listed
(times only, never the password or a hash of it), and the sessions it flags.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from doorward.storage.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("breach_checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("password_compromised_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("password_compromised", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("password_compromised")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_compromised_at")
        batch.drop_column("breach_checked_at")
