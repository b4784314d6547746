"""Secrets at rest and webhook secret overlap: the signing secret columns become text wide
enough for an encrypted value, and a user keeps the webhook secret a rotation replaced (with the
end of its overlap window) so that deliveries are signed with both meanwhile.

Revision ID: 0012
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from cueflow.sql.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "webhook_secret", type_=sa.Text(), existing_type=sa.String(80), existing_nullable=False
        )
        batch.alter_column(
            "alert_webhook_secret",
            type_=sa.Text(),
            existing_type=sa.String(80),
            existing_nullable=True,
        )
        batch.add_column(sa.Column("previous_webhook_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_webhook_secret_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("previous_webhook_secret_until")
        batch.drop_column("previous_webhook_secret")
        batch.alter_column(
            "alert_webhook_secret",
            type_=sa.String(80),
            existing_type=sa.Text(),
            existing_nullable=True,
        )
        batch.alter_column(
            "webhook_secret", type_=sa.String(80), existing_type=sa.Text(), existing_nullable=False
        )
