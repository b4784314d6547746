"""Run controls: a cue's overlap policy, concurrency limit, priority, rate limit and required
payload keys; each execution carries its cue's priority and limits (so the queue index orders
by priority and a claim counts what a key holds without a join); the starts a rate limit
counts; the idempotency keys of manual fires.

Revision ID: 0010
Revises: 0009
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cueflow.sql.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cues") as batch:
        batch.add_column(
            sa.Column("overlap_policy", sa.String(20), nullable=False, server_default="allow")
        )
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("concurrency_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("concurrency_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("rate_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_period_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("required_payload_keys", _json(), nullable=True))
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("concurrency_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("concurrency_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("rate_limit", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_period_seconds", sa.Integer(), nullable=True))
    op.drop_index("ix_executions_queue", table_name="executions")
    op.create_index(
        "ix_executions_queue",
        "executions",
        ["user_id", "status", sa.literal_column("priority DESC"), "scheduled_for"],
        unique=False,
    )
    op.create_index(
        "ix_executions_concurrency",
        "executions",
        ["user_id", "concurrency_key", "status"],
        unique=False,
    )
    op.create_table(
        "rate_limit_starts",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("rate_key", sa.String(300), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "rate_key", "expires_at", "execution_id"),
    )
    op.create_table(
        "fire_idempotency",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("cue_id", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cue_id"], ["cues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "cue_id", "idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("fire_idempotency")
    op.drop_table("rate_limit_starts")
    op.drop_index("ix_executions_concurrency", table_name="executions")
    op.drop_index("ix_executions_queue", table_name="executions")
    op.create_index(
        "ix_executions_queue", "executions", ["user_id", "status", "scheduled_for"], unique=False
    )
    with op.batch_alter_table("executions") as batch:
        for column in (
            "rate_period_seconds",
            "rate_limit",
            "rate_key",
            "concurrency_limit",
            "concurrency_key",
            "priority",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("cues") as batch:
        for column in (
            "required_payload_keys",
            "rate_key",
            "rate_period_seconds",
            "rate_limit",
            "concurrency_key",
            "concurrency_limit",
            "priority",
            "overlap_policy",
        ):
            batch.drop_column(column)
