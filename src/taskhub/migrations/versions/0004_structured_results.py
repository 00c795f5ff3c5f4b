"""Structured results: `result` and `payload` become jsonb, failures get an `error` column.

Revision ID: 0004
Revises: 0003
Create Date: 2025-08-07

Data, in one pass per step:
- failed tasks: the free-text result was the error message; it moves to `error` (an empty one
  becomes `no error message was recorded before revision 0004`) and `result` becomes NULL;
- other results: text that is valid JSON is kept as that JSON value; any other text is wrapped
  as `{"legacy_text": <text>}`; NULL stays NULL, except that a completed task without a result
  gets the JSON value `null` ("completed, nothing recorded"), since completed now requires one;
- `payload` json -> jsonb (jsonb drops duplicate keys, keeping the last, and insignificant
  whitespace).
Then: completed requires a result, failed requires an error.

Downgrade turns results back into text (wrapped legacy text unwrapped exactly, JSON `null`
back to NULL, other JSON as its jsonb text), moves failed tasks' errors back into `result`, and
payloads back to json. JSON whitespace and key order of the original text, and duplicate
payload keys, are not restored.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_MESSAGE = "no error message was recorded before revision 0004"


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION pg_temp.taskhub_try_jsonb(value text) RETURNS jsonb
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            RETURN value::jsonb;
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END $$""")
    op.execute("ALTER TABLE tasks ADD COLUMN error text")
    op.execute(f"""
        UPDATE tasks SET error = coalesce(nullif(btrim(result), ''), '{NO_MESSAGE}'),
                         result = NULL
        WHERE status = 'failed'""")
    op.execute("""
        ALTER TABLE tasks ALTER COLUMN result TYPE jsonb USING CASE
            WHEN result IS NULL THEN (CASE WHEN status = 'completed' THEN 'null'::jsonb END)
            ELSE coalesce(pg_temp.taskhub_try_jsonb(result),
                          jsonb_build_object('legacy_text', result))
        END""")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload DROP DEFAULT")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload SET DEFAULT '{}'::jsonb")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_completed_has_result "
               "CHECK (status <> 'completed' OR result IS NOT NULL)")
    op.execute("ALTER TABLE tasks ADD CONSTRAINT ck_tasks_failed_has_error "
               "CHECK (status <> 'failed' OR error IS NOT NULL)")
    op.execute("DROP FUNCTION pg_temp.taskhub_try_jsonb(text)")


def downgrade() -> None:
    op.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_failed_has_error")
    op.execute("ALTER TABLE tasks DROP CONSTRAINT ck_tasks_completed_has_result")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload DROP DEFAULT")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload TYPE json USING payload::json")
    op.execute("ALTER TABLE tasks ALTER COLUMN payload SET DEFAULT '{}'::json")
    op.execute("""
        ALTER TABLE tasks ALTER COLUMN result TYPE text USING CASE
            WHEN result IS NULL OR result = 'null'::jsonb THEN NULL
            WHEN jsonb_typeof(result) = 'object' AND result ? 'legacy_text'
                 AND result - 'legacy_text' = '{}'::jsonb THEN result ->> 'legacy_text'
            ELSE result::text
        END""")
    op.execute(f"""
        UPDATE tasks SET result = nullif(error, '{NO_MESSAGE}')
        WHERE status = 'failed'""")
    op.execute("ALTER TABLE tasks DROP COLUMN error")
