"""Normalise task statuses to the lifecycle's four: pending, processing, completed, failed.

Revision ID: 0003
Revises: 0002
Create Date: 2025-05-19

Data: statuses are compared trimmed and lower-cased, then mapped: `new`, `pending` -> pending;
`running`, `in_progress`, `processing` -> processing; `done`, `completed` -> completed;
`error`, `failed` -> failed. Any other value stops the upgrade, naming the values and the task
ids: an unknown status is never guessed. Then the status is constrained to the four values, the
default becomes `pending`, and the per-user index also covers the status (the worker queue's
`(status, created_at)` index is added too).

Downgrade drops the constraint and indexes and restores the default `new`; which legacy
spelling a task had (`running` or `in_progress`, `Done` or `done`) is not recorded and stays
canonical.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_STATUSES = {
    "new": "pending", "pending": "pending",
    "running": "processing", "in_progress": "processing", "processing": "processing",
    "done": "completed", "completed": "completed",
    "error": "failed", "failed": "failed",
}
MAX_LISTED = 20


def _mapping_sql() -> str:
    return "(VALUES " + ", ".join(f"('{k}', '{v}')" for k, v in LEGACY_STATUSES.items()) + ")"


def _refuse_unknown() -> str:
    # A DO block rather than Python, so `checker db upgrade --sql` carries the same guard.
    return f"""
DO $$
DECLARE
    listed text;
BEGIN
    SELECT string_agg(format('%L x%s: tasks %s%s', status, n, ids,
                             CASE WHEN n > {MAX_LISTED} THEN ' ...' ELSE '' END), '; ')
    INTO listed
    FROM (SELECT t.status, count(*) AS n,
                 array_to_string((array_agg(t.id::text ORDER BY t.id))[1:{MAX_LISTED}], ', ')
                     AS ids
          FROM tasks t LEFT JOIN {_mapping_sql()} AS m(legacy, canonical)
               ON m.legacy = lower(btrim(t.status))
          WHERE m.canonical IS NULL GROUP BY t.status ORDER BY t.status) AS u;
    IF listed IS NOT NULL THEN
        RAISE EXCEPTION 'revision 0003 stopped: unknown task status value(s): %. Map them by '
            'hand to one of pending, processing, completed, failed, then upgrade again.', listed;
    END IF;
END $$"""


def upgrade() -> None:
    op.execute(_refuse_unknown())
    op.execute(f"""
        UPDATE tasks t SET status = m.canonical
        FROM {_mapping_sql()} AS m(legacy, canonical)
        WHERE m.legacy = lower(btrim(t.status)) AND t.status <> m.canonical""")
    op.execute("ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'pending'")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_status_known "
               "CHECK (status IN ('pending', 'processing', 'completed', 'failed'))")
    op.execute("DROP INDEX tasks_user_id_idx")
    op.execute("CREATE INDEX ix_tasks_user_id_status ON tasks (user_id, status)")
    op.execute("CREATE INDEX ix_tasks_status_created_at ON tasks (status, created_at)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_tasks_status_created_at")
    op.execute("DROP INDEX ix_tasks_user_id_status")
    op.execute("CREATE INDEX tasks_user_id_idx ON tasks (user_id)")
    op.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_status_known")
    op.execute("ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'new'")
