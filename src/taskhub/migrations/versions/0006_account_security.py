"""Account security: password history, login sessions, temporary passwords.

Revision ID: 0006
Revises: 0005
Create Date: 2026-04-02

Adds `password_history`, `auth_sessions` (a JWT's `jti` is its row id) and, on `users`,
`must_change_password`, `temp_password_expires_at` and `password_changed_at`.

Data: every user's current hash becomes their first history entry (dated `created_at`, so the
no-reuse rule covers the password they have now); `password_changed_at` starts at
`created_at`, the last time the password is known to have been set.

Downgrade drops the three columns and both tables: sessions (everyone is logged out) and
earlier password hashes are lost.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE users
            ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
            ADD COLUMN temp_password_expires_at timestamptz,
            ADD COLUMN password_changed_at timestamptz""")
    op.execute("UPDATE users SET password_changed_at = created_at")
    op.execute("ALTER TABLE users ALTER COLUMN password_changed_at SET DEFAULT now(), "
               "ALTER COLUMN password_changed_at SET NOT NULL")
    op.execute("ALTER TABLE users ADD CONSTRAINT ck_users_temp_password_expires "
               "CHECK (NOT must_change_password OR temp_password_expires_at IS NOT NULL)")
    op.execute("""
        CREATE TABLE password_history (
            id bigint GENERATED ALWAYS AS IDENTITY,
            user_id uuid NOT NULL,
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_password_history PRIMARY KEY (id),
            CONSTRAINT fk_password_history_user_id_users FOREIGN KEY (user_id)
                REFERENCES users (id) ON DELETE CASCADE
        )""")
    op.execute("CREATE INDEX ix_password_history_user_id_created_at "
               "ON password_history (user_id, created_at)")
    op.execute("""
        INSERT INTO password_history (user_id, password_hash, created_at)
        SELECT id, password_hash, created_at FROM users ORDER BY created_at, id""")
    op.execute("""
        CREATE TABLE auth_sessions (
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            user_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz,
            CONSTRAINT pk_auth_sessions PRIMARY KEY (id),
            CONSTRAINT fk_auth_sessions_user_id_users FOREIGN KEY (user_id)
                REFERENCES users (id) ON DELETE CASCADE,
            CONSTRAINT ck_auth_sessions_expires_after_created CHECK (expires_at > created_at)
        )""")
    op.execute("CREATE INDEX ix_auth_sessions_user_id ON auth_sessions (user_id)")


def downgrade() -> None:
    op.execute("DROP TABLE auth_sessions")
    op.execute("DROP TABLE password_history")
    op.execute("ALTER TABLE users DROP CONSTRAINT ck_users_temp_password_expires")
    op.execute("""
        ALTER TABLE users DROP COLUMN password_changed_at,
            DROP COLUMN temp_password_expires_at, DROP COLUMN must_change_password""")
