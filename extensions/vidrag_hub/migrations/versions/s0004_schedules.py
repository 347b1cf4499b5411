"""service tables: batch-schedules, runs

Revision ID: s0004
Revises: s0003
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
