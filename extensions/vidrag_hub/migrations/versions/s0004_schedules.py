"""service tables: batch-schedules, runs

Revision ID: s0004
Revises: s0003
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vidrag_schedules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("collection_id", sa.String(36), nullable=False, index=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("captions", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("running_run_id", sa.String(36), nullable=True),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_table(
        "vidrag_schedule_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("schedule_id", sa.String(36), nullable=False, index=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _when("started_at"),
        _when("finished_at", nullable=True),
        _when("heartbeat_at", nullable=True),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("summary", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("notebook", sa.String(255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("vidrag_schedule_runs")
    op.drop_table("vidrag_schedules")
