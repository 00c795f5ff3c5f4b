"""Normalise emails (trimmed, lower-case, unique case-insensitively); name constraints.

Revision ID: 0002
Revises: 0001
Create Date: 2025-03-02

Data: every email becomes `lower(btrim(email))` (PostgreSQL's `lower`, so under a C collation
only ASCII letters change case). If two accounts collapse onto one address the upgrade stops
and names every conflicting id: merging accounts is a decision for a person, never a migration.
Also adds `users.updated_at` (existing rows: their `created_at`), and renames the hand-made
tables' constraints to the naming convention the models use from here on (`pk_users`,
`fk_tasks_user_id_users`...).

Downgrade restores the case-sensitive unique constraint and the default names and drops
`updated_at`; the emails'
original case and padding are not recorded anywhere and stay normalised.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_LISTED = 20
RENAMES = (("users", "users_pkey", "pk_users"), ("tasks", "tasks_pkey", "pk_tasks"),
           ("tasks", "tasks_user_id_fkey", "fk_tasks_user_id_users"))

# A DO block rather than Python, so `checker db upgrade --sql` carries the same guard.
REFUSE_COLLISIONS = f"""
DO $$
DECLARE
    collisions integer;
    listed text;
BEGIN
    SELECT count(*), string_agg(format('%L <- users %s', normalised, ids), '; ')
    INTO collisions, listed
    FROM (SELECT lower(btrim(email)) AS normalised,
                 array_to_string(array_agg(id::text ORDER BY created_at, id), ', ') AS ids
          FROM users GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT {MAX_LISTED}) AS c;
    IF collisions > 0 THEN
        RAISE EXCEPTION 'revision 0002 stopped: email(s) would collide after normalisation: %. '
            'Resolve these accounts by hand, then upgrade again.', listed;
    END IF;
END $$"""


def upgrade() -> None:
    op.execute(REFUSE_COLLISIONS)
    op.execute("UPDATE users SET email = lower(btrim(email)) WHERE email <> lower(btrim(email))")
    op.execute("ALTER TABLE users DROP CONSTRAINT users_email_key")
    for table, old, new in RENAMES:
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")
    op.execute("CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email))")
    op.execute("ALTER TABLE users ADD CONSTRAINT ck_users_email_normalised "
               "CHECK (email = lower(btrim(email)))")
    op.execute("ALTER TABLE users ADD COLUMN updated_at timestamptz")
    op.execute("UPDATE users SET updated_at = created_at")
    op.execute("ALTER TABLE users ALTER COLUMN updated_at SET DEFAULT now(), "
               "ALTER COLUMN updated_at SET NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN updated_at")
    op.execute("ALTER TABLE users DROP CONSTRAINT ck_users_email_normalised")
    op.execute("DROP INDEX uq_users_email_lower")
    for table, old, new in RENAMES:
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {new} TO {old}")
    op.execute("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)")
