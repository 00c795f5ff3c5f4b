"""Core schema: users, password history, auth sessions, tasks and their events.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Downgrade drops every table: all data in them is lost (there is nothing earlier to keep it in).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'processing', 'completed', 'failed'"


def _uuid_pk() -> sa.Column[object]:
    return sa.Column(
        "id", postgresql.UUID(as_uuid=True), primary_key=True,
        server_default=sa.text("gen_random_uuid()"),
    )


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _owner(table: str) -> sa.Column[object]:
    return sa.Column(
        "user_id", postgresql.UUID(as_uuid=True),
        sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id_users"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        _uuid_pk(),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False,
                  server_default=sa.text("false")),
        sa.Column("temp_password_expires_at", sa.DateTime(timezone=True)),
        _timestamp("password_changed_at"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("email = lower(btrim(email))", name=op.f("ck_users_email_normalised")),
        sa.CheckConstraint(
            "NOT must_change_password OR temp_password_expires_at IS NOT NULL",
            name=op.f("ck_users_temp_password_expires"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "password_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        _owner("password_history"),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_password_history"),
    )
    op.create_index(
        "ix_password_history_user_id_created_at", "password_history", ["user_id", "created_at"]
    )

    op.create_table(
        "auth_sessions",
        _uuid_pk(),
        _owner("auth_sessions"),
        _timestamp("created_at"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("expires_at > created_at",
                           name=op.f("ck_auth_sessions_expires_after_created")),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])

    op.create_table(
        "tasks",
        _uuid_pk(),
        _owner("tasks"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("result", postgresql.JSONB()),
        sa.Column("error", sa.Text()),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_tasks_status_known")),
        sa.CheckConstraint("status <> 'completed' OR result IS NOT NULL",
                           name=op.f("ck_tasks_completed_has_result")),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL",
                           name=op.f("ck_tasks_failed_has_error")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_tasks_version_positive")),
        sa.UniqueConstraint("id", "user_id", name="uq_tasks_id_user_id"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_user_id_status", "tasks", ["user_id", "status"])
    op.create_index("ix_tasks_status_created_at", "tasks", ["status", "created_at"])

    op.create_table(
        "task_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("task_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("from_status", sa.Text()),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        _timestamp("at"),
        sa.ForeignKeyConstraint(
            ["task_id", "user_id"], ["tasks.id", "tasks.user_id"],
            ondelete="CASCADE", name="fk_task_events_task_id_user_id_tasks",
        ),
        sa.CheckConstraint(f"to_status IN ({STATUSES})",
                           name=op.f("ck_task_events_to_status_known")),
        sa.CheckConstraint(f"from_status IS NULL OR from_status IN ({STATUSES})",
                           name=op.f("ck_task_events_from_status_known")),
        sa.PrimaryKeyConstraint("id", name="pk_task_events"),
    )
    op.create_index("ix_task_events_task_id_id", "task_events", ["task_id", "id"])
    op.create_index("ix_task_events_user_id", "task_events", ["user_id"])


def downgrade() -> None:
    for table in ("task_events", "tasks", "auth_sessions", "password_history", "users"):
        op.drop_table(table)
