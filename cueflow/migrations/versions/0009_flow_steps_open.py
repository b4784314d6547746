"""``ix_flow_steps_open``: whether a ``for_each`` step has an item still open is answered from an
index after each item's end, so fan-in stays cheap with 1,000 items.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_flow_steps_open", "flow_steps", ["run_id", "step_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_flow_steps_open", table_name="flow_steps")
