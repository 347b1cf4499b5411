"""service tables: stripe-customers, stripe-events

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
