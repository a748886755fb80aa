"""The admin API's keys: names, scopes and SHA-256 digests, never the keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from doorward.storage.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_admin_keys"),
    )
    op.create_index("ix_admin_keys_name", "admin_keys", ["name"], unique=True)
    op.create_index("ix_admin_keys_digest", "admin_keys", ["digest"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_admin_keys_digest", table_name="admin_keys")
    op.drop_index("ix_admin_keys_name", table_name="admin_keys")
    op.drop_table("admin_keys")
