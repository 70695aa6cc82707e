"""CSV exports of the logger family (Kolibri's GenerateCSVLogRequest)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("export_id", sa.String(length=64), nullable=False),
        sa.Column("log_type", sa.String(length=16), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=True),
        sa.Column("until", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "export_id"))


def downgrade() -> None:
    op.drop_table("exports")
