"""Task events and versions: every status change is recorded; `version` counts the changes.

Revision ID: 0005
Revises: 0004
Create Date: 2025-11-23

Adds `task_events` (owner included, with a composite foreign key to `(tasks.id,
tasks.user_id)` so an event can never name another owner than its task's) and `tasks.version`.

Data: each existing task gets the legal path that leads to its status, written by actor
`migration:0005`: creation (NULL -> pending) at `created_at`; for processing, completed and
failed tasks also pending -> processing; for completed and failed tasks also processing ->
their status. When those later steps happened was never recorded: they carry `updated_at`.
`version` becomes the number of events (1, 2 or 3).

Downgrade drops `task_events` and `version`: every event written since, and the versions, are
lost (the statuses themselves stay).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'processing', 'completed', 'failed'"
ACTOR = "migration:0005"


def upgrade() -> None:
    op.execute("ALTER TABLE tasks ADD CONSTRAINT uq_tasks_id_user_id UNIQUE (id, user_id)")
    op.execute(f"""
        CREATE TABLE task_events (
            id bigint GENERATED ALWAYS AS IDENTITY,
            task_id uuid NOT NULL,
            user_id uuid NOT NULL,
            from_status text,
            to_status text NOT NULL,
            actor text NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_task_events PRIMARY KEY (id),
            CONSTRAINT fk_task_events_task_id_user_id_tasks FOREIGN KEY (task_id, user_id)
                REFERENCES tasks (id, user_id) ON DELETE CASCADE,
            CONSTRAINT ck_task_events_to_status_known CHECK (to_status IN ({STATUSES})),
            CONSTRAINT ck_task_events_from_status_known
                CHECK (from_status IS NULL OR from_status IN ({STATUSES}))
        )""")
    # Three set-based passes; identity order keeps each task's events in path order.
    op.execute(f"""
        INSERT INTO task_events (task_id, user_id, from_status, to_status, actor, at)
        SELECT id, user_id, NULL, 'pending', '{ACTOR}', created_at FROM tasks ORDER BY id""")
    op.execute(f"""
        INSERT INTO task_events (task_id, user_id, from_status, to_status, actor, at)
        SELECT id, user_id, 'pending', 'processing', '{ACTOR}', updated_at FROM tasks
        WHERE status IN ('processing', 'completed', 'failed') ORDER BY id""")
    op.execute(f"""
        INSERT INTO task_events (task_id, user_id, from_status, to_status, actor, at)
        SELECT id, user_id, 'processing', status, '{ACTOR}', updated_at FROM tasks
        WHERE status IN ('completed', 'failed') ORDER BY id""")
    op.execute("CREATE INDEX ix_task_events_task_id_id ON task_events (task_id, id)")
    op.execute("CREATE INDEX ix_task_events_user_id ON task_events (user_id)")
    # With a constant default, adding the column rewrites nothing; only started tasks change.
    op.execute("ALTER TABLE tasks ADD COLUMN version integer NOT NULL DEFAULT 1")
    op.execute("""
        UPDATE tasks SET version = CASE status WHEN 'processing' THEN 2 ELSE 3 END
        WHERE status <> 'pending'""")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_version_positive CHECK (version >= 1)")


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP COLUMN version")
    op.execute("DROP TABLE task_events")
    op.execute("ALTER TABLE tasks DROP CONSTRAINT uq_tasks_id_user_id")
