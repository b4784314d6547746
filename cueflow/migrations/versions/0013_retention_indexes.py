"""History retention: indexes that find what the pruning deletes without scanning the tables
(terminal executions by their last change, ended flow runs by their end, alerts by age).

Revision ID: 0013
Revises: 0010
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_retention", "executions", ["status", "updated_at"])
    op.create_index("ix_flow_runs_retention", "flow_runs", ["status", "finished_at"])
    op.create_index("ix_alerts_created", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_created", table_name="alerts")
    op.drop_index("ix_flow_runs_retention", table_name="flow_runs")
    op.drop_index("ix_executions_retention", table_name="executions")
