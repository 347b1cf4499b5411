"""service tables: plans, accounts, usage-ledger

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
