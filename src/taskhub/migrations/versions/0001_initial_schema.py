"""Initial schema: users and their tasks, as the first release shipped it.

Revision ID: 0001
Revises:
Create Date: 2025-01-14

The early, loose shape: emails unique only as typed (case-sensitive), free-form task statuses
(`new`, `running`, `done`...), results as free text, payloads as `json`, and a foreign key that
blocks deleting a user who has tasks. The tables were first created by hand, so constraints
and indexes carry PostgreSQL's default names (`users_pkey`, `tasks_user_id_fkey`...); databases
created before Alembic was introduced are in exactly this state (`checker db adopt`
recognises and stamps them).

Downgrade drops both tables: all data in them is lost.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE users (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            email text NOT NULL,
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT users_pkey PRIMARY KEY (id),
            CONSTRAINT users_email_key UNIQUE (email)
        )""")
    op.execute("""
        CREATE TABLE tasks (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL,
            title text NOT NULL,
            payload json NOT NULL DEFAULT '{}'::json,
            status text NOT NULL DEFAULT 'new',
            result text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT tasks_pkey PRIMARY KEY (id),
            CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)
        )""")
    op.execute("CREATE INDEX tasks_user_id_idx ON tasks (user_id)")


def downgrade() -> None:
    op.execute("DROP TABLE tasks")
    op.execute("DROP TABLE users")
