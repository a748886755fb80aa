"""Sessions lose their own password_compromised flag: it is the account's, read from the user row.

The flag copied ``users.password_compromised_at`` onto each session (at login, and onto every
session when a breach was found), so it could only say what the user row says, and a login racing
the breach mark could copy the old value. The session check reads the user row anyway.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("password_compromised")


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("password_compromised", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # What the column said before: the account's mark, on each of its sessions.
    op.execute(
        "UPDATE sessions SET password_compromised = "
        "(SELECT users.password_compromised_at IS NOT NULL FROM users WHERE users.id = sessions.user_id)"
    )
