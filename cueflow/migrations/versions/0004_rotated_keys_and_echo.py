"""Account keys and the echo receiver: rotated API key hashes and stored echo messages.

Revision ID: 0004
Revises: 0003
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cueflow.sql.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rotated_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("rotated_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_rotated_keys_rotated_at", "rotated_keys", ["rotated_at"], unique=False)
    op.create_table(
        "echo_messages",
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("payload", _json(), nullable=True),
        sa.Column("headers", _json(), nullable=False),
        sa.Column("received_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_index("ix_echo_messages_expires_at", "echo_messages", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_echo_messages_expires_at", table_name="echo_messages")
    op.drop_table("echo_messages")
    op.drop_index("ix_rotated_keys_rotated_at", table_name="rotated_keys")
    op.drop_table("rotated_keys")
