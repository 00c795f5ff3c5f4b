"""Cascading deletes and tenant isolation: roles, grants and row-level security.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Deleting a user now deletes their tasks (and, through them, their events) instead of being
refused: the foreign key `tasks.user_id` becomes ON DELETE CASCADE, like the later tables'.

`taskhub_app` (tenant-scoped, NOLOGIN, no BYPASSRLS) sees only the rows whose `user_id` equals
the transaction-local setting `app.user_id`; `taskhub_worker` may read every tenant's tasks and
move them through the lifecycle (status columns only) but never create or delete them. The
connecting (owner) role is granted both so it can `SET LOCAL ROLE` per transaction.

Downgrade drops the policies, revokes the grants and makes the foreign key refuse deletes
again; no data changes. The two roles are cluster-wide and may be used by other databases on
the same server, so they are left in place (harmless without grants).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP, WORKER = "taskhub_app", "taskhub_worker"
TENANT = "user_id = NULLIF(current_setting('app.user_id', true), '')::uuid"
TENANT_TABLES = ("tasks", "task_events")
ALL_TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")


def _ensure_role(role: str) -> None:
    # CREATE ROLE has no IF NOT EXISTS; a concurrent creator raises duplicate_object.
    op.execute(f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$""")
    op.execute(f"""
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
                EXECUTE format('GRANT {role} TO %I', current_user);
            END IF;
        END $$""")


def upgrade() -> None:
    op.execute("ALTER TABLE tasks DROP CONSTRAINT fk_tasks_user_id_users")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT fk_tasks_user_id_users FOREIGN KEY (user_id) "
               "REFERENCES users (id) ON DELETE CASCADE")
    _ensure_role(APP)
    _ensure_role(WORKER)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}, {WORKER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(ALL_TABLES)} TO {APP}")
    op.execute(f"GRANT SELECT, UPDATE (status, result, error, version, updated_at) "
               f"ON tasks TO {WORKER}")
    op.execute(f"GRANT SELECT, INSERT ON task_events TO {WORKER}")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_tenant ON {table} FOR ALL TO {APP} "
                   f"USING ({TENANT}) WITH CHECK ({TENANT})")
        op.execute(f"CREATE POLICY {table}_worker_read ON {table} FOR SELECT TO {WORKER} "
                   f"USING (true)")
    op.execute(f"CREATE POLICY tasks_worker_update ON tasks FOR UPDATE TO {WORKER} "
               f"USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY task_events_worker_insert ON task_events FOR INSERT TO {WORKER} "
               f"WITH CHECK (true)")


def downgrade() -> None:
    op.execute("DROP POLICY task_events_worker_insert ON task_events")
    op.execute("DROP POLICY tasks_worker_update ON tasks")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY {table}_worker_read ON {table}")
        op.execute(f"DROP POLICY {table}_tenant ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON {', '.join(ALL_TABLES)} FROM {APP}, {WORKER}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP}, {WORKER}")
    op.execute("ALTER TABLE tasks DROP CONSTRAINT fk_tasks_user_id_users")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT fk_tasks_user_id_users FOREIGN KEY (user_id) "
               "REFERENCES users (id)")
