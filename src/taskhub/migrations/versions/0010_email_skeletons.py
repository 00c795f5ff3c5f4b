"""Emails that only look alike are one address: `users.email_skeleton`, unique.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Adds `email_skeleton`, the Unicode UTS #39 confusable skeleton of the email (ICU's
`SpoofChecker.getSkeleton`, the same call as `taskhub.confusables.skeleton`), under a unique
index: registering `p\u0430yp\u0430l@example.com` (with Cyrillic `\u0430`) next to
`paypal@example.com` is refused as taken. A row written without the services (a tool, a seed)
gets a placeholder that collides with nothing (`unset:<uuid>`); `taskhub_app` may update the
column along with the email.

Data: every existing user gets the skeleton of its email, computed here in Python (ICU has no
SQL interface), in one set-based UPDATE. Accounts whose emails share a skeleton stop the
upgrade, listed by id: which of them is the impostor is for a person to decide; nothing is
changed. Offline (`checker db upgrade --sql`) the SQL refuses to run on a database that
already has users, since it cannot compute their skeletons.

A later ICU may map more characters to the same skeleton: recompute then with a revision like
this one (skeletons are compared, never shown, so recomputing loses nothing).

Downgrade drops the column and its index; no user is lost.
"""

from collections.abc import Sequence

import icu
import sqlalchemy as sa
from alembic import context, op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_LISTED = 20
PLACEHOLDER = "'unset:'::text || gen_random_uuid()"  # as PostgreSQL shows it (the models')
REFUSE_EXISTING_OFFLINE = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM users) THEN
        RAISE EXCEPTION 'revision 0010 computes the skeletons of existing emails in Python: '
            'run it online (checker db upgrade --dsn ...), not from offline SQL';
    END IF;
END $$"""


def _backfill() -> None:
    bind = op.get_bind()
    checker = icu.SpoofChecker()
    users = bind.execute(sa.text("SELECT id, email FROM users ORDER BY created_at, id")).all()
    by_skeleton: dict[str, list[str]] = {}
    for user_id, email in users:
        by_skeleton.setdefault(str(checker.getSkeleton(0, email)), []).append(str(user_id))
    clashes = [ids for ids in by_skeleton.values() if len(ids) > 1]
    if clashes:
        listed = "; ".join(", ".join(ids) for ids in clashes[:MAX_LISTED])
        more = "; ..." if len(clashes) > MAX_LISTED else ""
        # Raised by the server, so the upgrade stops like the SQL guards of 0002 and 0008 (the
        # text holds ids and words only: no quote, no % placeholder).
        op.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'revision 0010 stopped: "
            f"{len(clashes)} group(s) of accounts have emails that look alike (the same "
            f"confusable skeleton): users {listed}{more}. Resolve these accounts by hand, "
            "then upgrade again.'; END $$")
    ids = [user_id for group in by_skeleton.values() for user_id in group]
    skeletons = [skeleton for skeleton, group in by_skeleton.items() for _ in group]
    bind.execute(sa.text(
        "UPDATE users u SET email_skeleton = s.skeleton "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:skeletons AS text[])) AS s (id, skeleton) "
        "WHERE u.id = s.id"), {"ids": ids, "skeletons": skeletons})


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN email_skeleton text")
    if context.is_offline_mode():
        op.execute(REFUSE_EXISTING_OFFLINE)
    else:
        _backfill()
    op.execute(f"ALTER TABLE users ALTER COLUMN email_skeleton SET DEFAULT ({PLACEHOLDER})")
    op.execute("ALTER TABLE users ALTER COLUMN email_skeleton SET NOT NULL")
    op.execute("CREATE UNIQUE INDEX uq_users_email_skeleton ON users (email_skeleton)")
    op.execute("GRANT UPDATE (email_skeleton) ON users TO taskhub_app")


def downgrade() -> None:
    op.execute("REVOKE UPDATE (email_skeleton) ON users FROM taskhub_app")
    op.execute("DROP INDEX uq_users_email_skeleton")
    op.execute("ALTER TABLE users DROP COLUMN email_skeleton")
