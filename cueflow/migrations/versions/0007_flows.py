"""Flows: ``flows``, ``flow_runs``, ``flow_steps``; step columns on ``executions`` (the hand-off
key replaces the fire key for them) and ``cues.flow_id`` for a step's hidden cue.

Revision ID: 0007
Revises: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cueflow.sql.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NOT_A_STEP = sa.text("flow_run_id IS NULL")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _dt() -> sa.types.TypeEngine[Any]:
    return cueflow.sql.types.UTCDateTime()


def upgrade() -> None:
    op.add_column("cues", sa.Column("flow_id", sa.String(length=20), nullable=True))
    # Cue lists leave flow steps' hidden cues out: the index takes flow_id so that the page and
    # its count stay index scans.
    op.drop_index("ix_cues_user_created", table_name="cues")
    op.create_index(
        "ix_cues_user_listed", "cues", ["user_id", "flow_id", "created_at"], unique=False
    )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("outcome_output", _json(), nullable=True))
        batch.add_column(sa.Column("flow_run_id", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("step_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("item", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("step_attempt", sa.Integer(), nullable=True))
        batch.drop_constraint("uq_executions_fire_key", type_="unique")
    op.create_index(
        "uq_executions_fire_key",
        "executions",
        ["cue_id", "scheduled_for"],
        unique=True,
        sqlite_where=_NOT_A_STEP,
        postgresql_where=_NOT_A_STEP,
    )
    op.create_index(
        "uq_executions_step_key",
        "executions",
        ["flow_run_id", "step_id", "item", "step_attempt"],
        unique=True,
    )
    op.create_table(
        "flows",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("input_schema", _json(), nullable=True),
        sa.Column("steps", _json(), nullable=False),
        sa.Column("step_cues", _json(), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_flows_user_name"),
    )
    op.create_index("ix_flows_user_created", "flows", ["user_id", "created_at"], unique=False)
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("flow_id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("input", _json(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("steps", _json(), nullable=False),
        sa.Column("step_cues", _json(), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.Column("finished_at", _dt(), nullable=True),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow_id", "idempotency_key", name="uq_flow_runs_idempotency"),
    )
    op.create_index(
        "ix_flow_runs_user_created", "flow_runs", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "flow_steps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=20), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("execution_ids", _json(), nullable=False),
        sa.Column("item_input", _json(), nullable=True),
        sa.Column("output", _json(), nullable=True),
        sa.Column("error", _json(), nullable=True),
        sa.Column("event", sa.String(length=255), nullable=True),
        sa.Column("wait_until", _dt(), nullable=True),
        sa.Column("started_at", _dt(), nullable=True),
        sa.Column("finished_at", _dt(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["flow_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "step_id", "item", name="uq_flow_steps_key"),
    )
    op.create_index("ix_flow_steps_waits", "flow_steps", ["status", "wait_until"], unique=False)


def downgrade() -> None:
    op.drop_table("flow_steps")
    op.drop_table("flow_runs")
    op.drop_table("flows")
    op.drop_index("uq_executions_step_key", table_name="executions")
    op.drop_index("uq_executions_fire_key", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.create_unique_constraint("uq_executions_fire_key", ["cue_id", "scheduled_for"])
        for column in ("step_attempt", "item", "step_id", "flow_run_id", "outcome_output"):
            batch.drop_column(column)
    op.drop_index("ix_cues_user_listed", table_name="cues")
    with op.batch_alter_table("cues") as batch:
        batch.drop_column("flow_id")
    op.create_index("ix_cues_user_created", "cues", ["user_id", "created_at"], unique=False)
