"""An index on executions by cue, newest first: the failure-streak check of a failed outcome
(a cue's latest finished executions) read the whole table without it, the only index with
``cue_id`` first being the fire key's, which is partial (executions outside flows).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_cue_created", "executions", ["cue_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_executions_cue_created", table_name="executions")
