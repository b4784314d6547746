"""An index on the executions waiting to start, by transport and account in hand-out order:
the dispatcher's candidate query ranked every due execution on each pass (a burst of thousands
due at once cost milliseconds per pass, and passes are many); with it a pass reads each
account's first few.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_WAITING = sa.text("status IN ('pending', 'retry_ready')")


def upgrade() -> None:
    op.create_index(
        "ix_executions_waiting",
        "executions",
        [
            "transport",
            "user_id",
            sa.literal_column("priority DESC"),
            "scheduled_for",
            "id",
        ],
        unique=False,
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_executions_waiting", table_name="executions")
