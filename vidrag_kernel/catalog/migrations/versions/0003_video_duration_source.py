"""videos.duration_source: where a video's duration figure came from

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("duration_source", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("duration_source")
