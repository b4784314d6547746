"""Push delivery and alerts: the alerts table and the dispatcher's execution indexes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cueflow.sql.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("cue_id", sa.String(length=20), nullable=True),
        sa.Column("execution_id", sa.String(length=36), nullable=True),
        sa.Column("alert_type", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "alert_metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("created_at", cueflow.sql.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_user_created", "alerts", ["user_id", "created_at"], unique=False)
    op.create_index(
        "ix_executions_dispatch",
        "executions",
        ["status", "transport", "scheduled_for"],
        unique=False,
    )
    op.create_index("ix_executions_retry", "executions", ["status", "next_retry"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_executions_retry", table_name="executions")
    op.drop_index("ix_executions_dispatch", table_name="executions")
    op.drop_index("ix_alerts_user_created", table_name="alerts")
    op.drop_table("alerts")
