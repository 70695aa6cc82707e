"""fact counter sequence (PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

On PostgreSQL, fact counters come from a sequence: a counter row would make every write
transaction of every process wait for the previous one's commit. SQLite keeps the row in
`meta` (its writers take turns anyway).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS fact_counter")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS fact_counter")
