"""Recurring cues: ``schedule_fall_back``, what a wall time repeated by a DST change does.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cues", sa.Column("schedule_fall_back", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cues") as batch:
        batch.drop_column("schedule_fall_back")
