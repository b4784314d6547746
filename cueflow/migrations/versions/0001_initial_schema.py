"""Initial schema: users, cues, executions, workers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cueflow.sql.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("api_key_prefix", sa.String(length=12), nullable=False),
        sa.Column("plan", sa.String(length=50), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("webhook_secret", sa.String(length=80), nullable=False),
        sa.Column("alert_webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("alert_webhook_secret", sa.String(length=80), nullable=True),
        sa.Column("created_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "cues",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("schedule_type", sa.String(length=10), nullable=False),
        sa.Column("schedule_cron", sa.String(length=100), nullable=True),
        sa.Column("schedule_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("schedule_timezone", sa.String(length=64), nullable=False),
        sa.Column("schedule_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("misfire_policy", sa.String(length=20), nullable=False),
        sa.Column("transport", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=255), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_method", sa.String(length=10), nullable=False),
        sa.Column(
            "callback_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("retry_max_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "retry_backoff_minutes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "on_failure",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("verification_mode", sa.String(length=50), nullable=True),
        sa.Column("next_run", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("last_run", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("fired_count", sa.Integer(), nullable=False),
        sa.Column("created_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_cues_user_name"),
    )
    op.create_index("ix_cues_due", "cues", ["status", "next_run"], unique=False)
    op.create_index("ix_cues_user_created", "cues", ["user_id", "created_at"], unique=False)

    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column(
            "handlers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("last_heartbeat", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("created_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "worker_id", name="uq_workers_user_worker"),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cue_id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("transport", sa.String(length=64), nullable=False),
        sa.Column("scheduled_for", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("triggered_by", sa.String(length=50), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("next_retry", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("claimed_by_worker", sa.String(length=255), nullable=True),
        sa.Column("claimed_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("lease_expires_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("last_heartbeat_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("outcome_success", sa.Boolean(), nullable=True),
        sa.Column("outcome_result", sa.Text(), nullable=True),
        sa.Column("outcome_error", sa.Text(), nullable=True),
        sa.Column(
            "outcome_metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("outcome_recorded_at", cueflow.sql.types.UTCDateTime(), nullable=True),
        sa.Column("outcome_state", sa.String(length=30), nullable=True),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["cue_id"], ["cues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cue_id", "scheduled_for", name="uq_executions_fire_key"),
    )
    op.create_index(
        "ix_executions_lease", "executions", ["status", "lease_expires_at"], unique=False
    )
    op.create_index(
        "ix_executions_queue", "executions", ["user_id", "status", "scheduled_for"], unique=False
    )
    op.create_index(
        "ix_executions_user_created", "executions", ["user_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_executions_user_created", table_name="executions")
    op.drop_index("ix_executions_queue", table_name="executions")
    op.drop_index("ix_executions_lease", table_name="executions")

    op.drop_table("executions")
    op.drop_table("workers")
    op.drop_index("ix_cues_user_created", table_name="cues")
    op.drop_index("ix_cues_due", table_name="cues")

    op.drop_table("cues")
    op.drop_table("users")
