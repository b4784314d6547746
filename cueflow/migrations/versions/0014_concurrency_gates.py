"""Concurrency gates: one row per account and concurrency key, locked by every move of the key's
executions into ``delivering`` (PostgreSQL).

A trigger on ``executions`` takes the key's gate row, then counts the key's ``delivering``
executions and skips the row update when the run's limit is reached. Under ``READ COMMITTED``
each query of a volatile function sees a fresh snapshot, taken here after the gate is held, so
the count includes every committed claim of the key from any node, and the rows this statement
moved before. A claim is thus admitted by its own ``UPDATE``: no advisory lock and no count in
round trips of its own. Leaving ``delivering`` takes no lock (the gate holds no count, so
outcomes never wait on claims and nothing can drift). SQLite, one writer at a time, counts in
the admission and leaves the table empty.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION cueflow_concurrency_gate() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM concurrency_gates
     WHERE user_id = NEW.user_id AND concurrency_key = NEW.concurrency_key FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO concurrency_gates (user_id, concurrency_key)
        VALUES (NEW.user_id, NEW.concurrency_key) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM concurrency_gates
         WHERE user_id = NEW.user_id AND concurrency_key = NEW.concurrency_key FOR UPDATE;
    END IF;
    IF NEW.concurrency_limit IS NOT NULL AND (
        SELECT count(*) FROM executions
         WHERE user_id = NEW.user_id AND concurrency_key = NEW.concurrency_key
           AND status = 'delivering'
    ) >= NEW.concurrency_limit THEN
        RETURN NULL;  -- the key is full: this row is not moved
    END IF;
    RETURN NEW;
END
$$
"""

_TRIGGER = """
CREATE TRIGGER cueflow_concurrency_gate BEFORE UPDATE OF status ON executions FOR EACH ROW
WHEN (NEW.status = 'delivering' AND OLD.status <> 'delivering'
      AND NEW.concurrency_key IS NOT NULL)
EXECUTE FUNCTION cueflow_concurrency_gate()
"""


def upgrade() -> None:
    op.create_table(
        "concurrency_gates",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("concurrency_key", sa.String(300), primary_key=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER cueflow_concurrency_gate ON executions")
        op.execute("DROP FUNCTION cueflow_concurrency_gate()")
    op.drop_table("concurrency_gates")
