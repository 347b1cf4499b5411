"""service tables: grants, invites and their answers, share links

Revision ID: s0001
Revises:
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vidrag_grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("collection_id", sa.String(36), nullable=False, index=True),
        sa.Column("principal_kind", sa.String(8), nullable=False),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(255), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("collection_id", "principal_kind", "principal", name="uq_vidrag_grant"),
    )
    op.create_index("ix_vidrag_grants_principal", "vidrag_grants", ["principal_kind", "principal"])
    op.create_table(
        "vidrag_invites",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("collection_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("invited_by", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        _when("created_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_table(
        "vidrag_invite_answers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("invite_id", sa.String(36), nullable=False, index=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("answer", sa.String(16), nullable=False),
        _when("answered_at"),
        sa.UniqueConstraint("invite_id", "user", name="uq_vidrag_invite_answer"),
    )
    op.create_table(
        "vidrag_share_links",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("collection_id", sa.String(36), nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        sa.Column("max_uses", sa.Integer, nullable=True),
        sa.Column("uses", sa.Integer, nullable=False),
        _when("revoked_at", nullable=True),
    )


def downgrade() -> None:
    op.drop_table("vidrag_share_links")
    op.drop_table("vidrag_invite_answers")
    op.drop_table("vidrag_invites")
    op.drop_index("ix_vidrag_grants_principal", "vidrag_grants")
    op.drop_table("vidrag_grants")
