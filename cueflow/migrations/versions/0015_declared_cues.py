"""Cues declared in code (``@engine.cron``, ``@engine.every``, ``@engine.at``): ``declaration``
holds the fingerprint of the declaration a cue was last synced from (``removed`` once a sync
paused it because no code declares it any more); ``NULL`` for a cue made by hand, which the
sync never touches.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cues") as batch:
        batch.add_column(sa.Column("declaration", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cues") as batch:
        batch.drop_column("declaration")
