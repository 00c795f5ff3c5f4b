"""Task events may only record a legal lifecycle step.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

Adds `ck_task_events_legal_step`: every event is a creation (NULL -> pending), a start
(pending -> processing) or an end (processing -> completed | failed), so not even raw SQL as the
worker role can record a skipped or backward step. That each step follows the previous one is
still the audit's `transitions.legal_path`; a CHECK sees one row.

Data: none is changed. Events that record another step (written by hand or by an old client
since 0005) stop the upgrade, listed by id with their task and step (at most 20): what really
happened to such a task cannot be guessed, so fix or delete them by hand and upgrade again.

Downgrade drops the constraint; nothing is lost.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A CASE rather than ORs of comparisons: `from_status = ...` is NULL for a creation, and a
# CHECK lets NULL pass.
LEGAL_STEP = """CASE
    WHEN from_status IS NULL THEN to_status = 'pending'
    WHEN from_status = 'pending' THEN to_status = 'processing'
    WHEN from_status = 'processing' THEN to_status IN ('completed', 'failed')
    ELSE false
END"""
MAX_LISTED = 20


def _refuse_illegal_steps() -> str:
    # A DO block rather than Python, so `checker db upgrade --sql` carries the same guard.
    return f"""
DO $$
DECLARE
    illegal bigint;
    listed text;
BEGIN
    SELECT count(*) INTO illegal FROM task_events WHERE NOT ({LEGAL_STEP});
    IF illegal > 0 THEN
        SELECT string_agg(format('event %s of task %s: %s -> %s', id, task_id,
                                 coalesce(from_status, '(none)'), to_status), '; ' ORDER BY id)
        INTO listed
        FROM (SELECT id, task_id, from_status, to_status FROM task_events
              WHERE NOT ({LEGAL_STEP}) ORDER BY id LIMIT {MAX_LISTED}) AS e;
        RAISE EXCEPTION 'revision 0008 stopped: % task event(s) record an illegal step: %. '
            'Fix or delete them by hand, then upgrade again.', illegal,
            listed || CASE WHEN illegal > {MAX_LISTED} THEN '; ...' ELSE '' END;
    END IF;
END $$"""


def upgrade() -> None:
    op.execute(_refuse_illegal_steps())
    op.execute(f"ALTER TABLE task_events ADD CONSTRAINT ck_task_events_legal_step "
               f"CHECK ({LEGAL_STEP})")


def downgrade() -> None:
    op.execute("ALTER TABLE task_events DROP CONSTRAINT ck_task_events_legal_step")
