"""service tables: stripe-customers, stripe-subscriptions, stripe-events

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-01 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vidrag_billing_customers",
        sa.Column("user", sa.String(255), primary_key=True),
        sa.Column("customer_id", sa.String(255), nullable=False, unique=True),
        _when("created_at"),
    )
    op.create_table(
        "vidrag_billing_subscriptions",
        sa.Column("subscription_id", sa.String(255), primary_key=True),
        sa.Column("user", sa.String(255), nullable=False, index=True),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("price_id", sa.String(255), nullable=True),
        sa.Column("plan", sa.String(64), nullable=True),
        _when("period_start", nullable=True),
        _when("period_end", nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
        _when("grace_until", nullable=True),
        _when("updated_at"),
    )
    op.create_table(
        "vidrag_billing_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        _when("received_at"),
    )


def downgrade() -> None:
    op.drop_table("vidrag_billing_events")
    op.drop_table("vidrag_billing_subscriptions")
    op.drop_table("vidrag_billing_customers")
