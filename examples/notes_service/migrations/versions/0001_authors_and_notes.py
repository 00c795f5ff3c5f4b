"""authors and notes; the citext and pg_trgm extensions

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "authors",
        sa.Column("id", postgresql.UUID(), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        sa.Column("email", postgresql.CITEXT(), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "notes",
        sa.Column("id", postgresql.UUID(), primary_key=True,
                  server_default=sa.text("gen_random_uuid()")),
        sa.Column("author_id", postgresql.UUID(),
                  sa.ForeignKey("authors.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("notes_title_trgm", "notes", ["title"], postgresql_using="gin",
                    postgresql_ops={"title": "gin_trgm_ops"})


def downgrade() -> None:
    op.drop_table("notes")
    op.drop_table("authors")
