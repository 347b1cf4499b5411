"""service tables: plans, plan changes (audit), usage counters, reservations, usage events

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vidrag_plans",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("plan", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("stripe_plan", sa.String(128), nullable=True),
        _when("period_start", nullable=True),
        sa.Column("org", sa.String(255), nullable=True),
        _when("updated_at"),
    )
    op.create_table(
        "vidrag_plan_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(255), nullable=False, index=True),
        sa.Column("old_plan", sa.String(128), nullable=True),
        sa.Column("new_plan", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        _when("at"),
    )
    op.create_table(
        "vidrag_usage",
        sa.Column("account", sa.String(300), primary_key=True),
        sa.Column("metric", sa.String(16), primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        _when("period_start", nullable=True),
    )
    op.create_table(
        "vidrag_reservations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account", sa.String(300), nullable=False, index=True),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True, index=True),
        sa.Column("ref", sa.String(300), nullable=True),
        _when("created_at"),
        _when("expires_at"),
    )
    op.create_index("ix_vidrag_reservations_expires_at", "vidrag_reservations", ["expires_at"])
    op.create_table(
        "vidrag_usage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _when("at"),
        sa.Column("account", sa.String(300), nullable=False, index=True),
        sa.Column("user", sa.String(255), nullable=False, index=True),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("ref", sa.String(300), nullable=True),
    )
    op.create_index("ix_vidrag_usage_events_at", "vidrag_usage_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_vidrag_usage_events_at", "vidrag_usage_events")
    op.drop_table("vidrag_usage_events")
    op.drop_index("ix_vidrag_reservations_expires_at", "vidrag_reservations")
    op.drop_table("vidrag_reservations")
    op.drop_table("vidrag_usage")
    op.drop_table("vidrag_plan_changes")
    op.drop_table("vidrag_plans")
