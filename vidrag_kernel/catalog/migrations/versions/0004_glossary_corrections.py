"""collections.glossary (course terms for speech recognition) and transcript corrections

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("glossary", sa.JSON(), nullable=True))
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("video_id", sa.String(36), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("original", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("video_id", "start", name="uq_correction_video_start"),
    )
    op.create_index("ix_corrections_video_id", "corrections", ["video_id"])


def downgrade() -> None:
    op.drop_index("ix_corrections_video_id", table_name="corrections")
    op.drop_table("corrections")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("glossary")
