"""Scheduled flows: ``flow_runs.trigger`` (``api`` or ``schedule``) and
``flow_runs.scheduled_for`` (the fire time of a run a schedule started). A flow's schedule itself
is a hidden cue (``cues.flow_id``, transport ``flow``), so it needs no column of its own.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import cueflow.sql.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("scheduled_for", cueflow.sql.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("scheduled_for")
        batch.drop_column("trigger")
