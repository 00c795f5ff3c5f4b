"""The history as temporary tables on the audit's own connection: what the ledger checks join.

`load` streams records into `pg_temp.audit_records` with one COPY (one row per record, the
fields the checks need already extracted from `args` and `observed` by the same Python rules
the history defines), then derives small indexed tables from it on the server. The checker
holds one record at a time, so its memory stays flat in the length of the history; the
server holds the tables for the life of the connection (they go with it).

Loading happens before the audit's READ ONLY transaction begins (a read-only transaction may
not create tables); `prepare` then fills `audit_disagreements` inside the snapshot (a
read-only transaction may still write temporary tables). Every name is qualified with
`pg_temp.`: the audit's search path puts `public` first, where a look-alike table could sit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from checker.errors import InfrastructureError, first_line
from checker.history import (
    PROBE_PREFIX,
    RUN_START,
    SEEDED_TASK_ID_SQL,
    TASK_SEED,
    HistoryError,
    HistoryRecord,
    _is_uuid,
)
from taskhub.errors import TaskhubError
from taskhub.users import normalise_email

Connection = psycopg.Connection[Any]

MAY_HAVE_HAPPENED = frozenset({"ok", "unknown"})
CREDENTIAL_CHANGES = ("password.change", "password.temporary")

_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("seq", "bigint PRIMARY KEY", "the record's place in the history (its order)"),
    ("process", "text NOT NULL", ""),
    ("tenant", "uuid", ""),
    ("op", "text NOT NULL", ""),
    ("outcome", "text NOT NULL", ""),
    ("t0", "float8 NOT NULL", "start, epoch seconds"),
    ("t1", "float8 NOT NULL", "end"),
    ("error", "text", ""),
    ("task", "uuid", "args.task_id of task.read/update/delete/transition"),
    ("observed_task", "uuid", "observed.task_id (task.create: the task it created)"),
    ("user_ref", "uuid", "the account it is about: args.user_id, else the tenant"),
    ("observed_user", "uuid", "observed.user_id"),
    ("session", "uuid", "login: observed.session_id; logout: args.session_id"),
    ("email_key", "text", "login/register: args.email trimmed, lower case"),
    ("email_norm", "text", "register: args.email as taskhub stores it"),
    ("password_id", "text", "login: the label of the password it tried"),
    ("installs", "text", "register/change/temporary that may have happened: the label set"),
    ("installs_user", "uuid", "... and for whom"),
    ("temp_label", "text", "password.temporary: observed.password_id"),
    ("wrote_ok", "boolean", "args.wrote is an object"),
    ("from_status", "text", "task.transition"),
    ("to_status", "text", "task.transition"),
    ("complete", "boolean", "run.start"),
    ("seed", "bigint", "task.seed"),
    ("seed_number", "integer", "task.seed: args.tenant_number"),
    ("seed_count", "integer", "task.seed: args.count"),
    ("leaked", "boolean", "probe.*: observed anything"),
    ("observed", "jsonb", "probe.*: what it observed (for samples)"),
    ("seen", "uuid[]", "observed.task_ids"),
    ("foreign_owners", "uuid[]", "a tenant's non-probe record: observed.owner_ids not its own"),
    ("write_fields", "text[]", "args.wrote's fields (creates and updates that may have "
                               "happened)"),
    ("write_values", "text[]", "... and their digests"),
)
"""`audit_records`: (name, type, meaning); `row` gives a record's values in this order."""
_NAMES = [name for name, _type, _meaning in _COLUMNS]

_DERIVED = [
    # Every attempted transition: a task.transition, or each task a claim saw (pending ->
    # processing), with its place in the history (seq, pos).
    """CREATE TEMP TABLE audit_transitions AS
       SELECT r.seq, 0::bigint AS pos, r.task, r.from_status, r.to_status, r.outcome
       FROM pg_temp.audit_records r WHERE r.op = 'task.transition'
       UNION ALL
       SELECT r.seq, s.pos, s.task, 'pending', 'processing', r.outcome
       FROM pg_temp.audit_records r, unnest(r.seen) WITH ORDINALITY AS s (task, pos)
       WHERE r.op = 'task.claim'""",
    "CREATE INDEX ON pg_temp.audit_transitions (task, from_status)",
    # Who created each task a task.create names (any outcome): the last such record.
    """CREATE TEMP TABLE audit_creates AS
       SELECT DISTINCT ON (observed_task) observed_task AS task, seq, tenant
       FROM pg_temp.audit_records WHERE op = 'task.create' AND observed_task IS NOT NULL
       ORDER BY observed_task, seq DESC""",
    "CREATE UNIQUE INDEX ON pg_temp.audit_creates (task)",
    # What a delete that may have happened may have removed.
    """CREATE TEMP TABLE audit_deleted_tasks AS SELECT DISTINCT task AS id
       FROM pg_temp.audit_records
       WHERE op = 'task.delete' AND outcome IN ('ok', 'unknown') AND task IS NOT NULL""",
    "CREATE UNIQUE INDEX ON pg_temp.audit_deleted_tasks (id)",
    """CREATE TEMP TABLE audit_deleted_users AS SELECT DISTINCT user_ref AS id
       FROM pg_temp.audit_records
       WHERE op = 'user.delete' AND outcome IN ('ok', 'unknown') AND user_ref IS NOT NULL""",
    "CREATE UNIQUE INDEX ON pg_temp.audit_deleted_users (id)",
    # Password changes and temporary passwords that may have happened, by user.
    f"""CREATE TEMP TABLE audit_changes AS
       SELECT seq, user_ref, op, outcome, t0, t1, temp_label FROM pg_temp.audit_records
       WHERE op IN {CREDENTIAL_CHANGES} AND outcome IN ('ok', 'unknown')
             AND user_ref IS NOT NULL""",
    "CREATE INDEX ON pg_temp.audit_changes (user_ref, t0, seq)",
    # Each field write (create or update) that may have happened, by task and field.
    """CREATE TEMP TABLE audit_writes AS
       SELECT r.seq, w.pos, coalesce(r.task, r.observed_task) AS task, w.field, w.value,
              r.op, r.outcome, r.tenant, r.t0, r.t1
       FROM pg_temp.audit_records r,
            unnest(r.write_fields, r.write_values) WITH ORDINALITY AS w (field, value, pos)
       WHERE r.write_fields IS NOT NULL""",
    # Every task a tenant's client saw (not a probe's): the listed ones, then the one it
    # created or read by id.
    f"""CREATE TEMP TABLE audit_seen AS
       SELECT r.seq, s.pos, s.task
       FROM pg_temp.audit_records r, unnest(r.seen) WITH ORDINALITY AS s (task, pos)
       WHERE r.tenant IS NOT NULL AND NOT starts_with(r.op, '{PROBE_PREFIX}')
       UNION ALL
       SELECT r.seq, coalesce(cardinality(r.seen), 0) + 1, r.observed_task
       FROM pg_temp.audit_records r
       WHERE r.tenant IS NOT NULL AND NOT starts_with(r.op, '{PROBE_PREFIX}')
             AND r.observed_task IS NOT NULL""",
    "CREATE INDEX ON pg_temp.audit_records (op, seq)",
    # Filled by `prepare`, inside the audit's snapshot.
    """CREATE TEMP TABLE audit_disagreements (
           pos bigint, seed_seq bigint, claimed uuid, task_id uuid, user_id uuid,
           created_at timestamptz)""",
]
_TABLES = ("audit_records", "audit_transitions", "audit_creates", "audit_deleted_tasks",
           "audit_deleted_users", "audit_changes", "audit_writes", "audit_seen")

TEMP_BUFFERS = "64MB"
"""The audit session's buffers for temporary tables (PostgreSQL's default is 8MB)."""


def load(conn: Connection, records: Iterable[HistoryRecord]) -> int:
    """Create the tables on `conn` (outside any transaction the caller holds: this commits)
    and fill them from `records`; returns how many records were loaded.

    InfrastructureError when the role may not create temporary tables; a HistoryError
    raised by `records` (a malformed line) passes through, the tables dropped.
    """
    try:
        conn.execute("SELECT set_config('temp_buffers', %s, false)", (TEMP_BUFFERS,))
        conn.execute("CREATE TEMP TABLE audit_records ("
                     + ", ".join(f"{name} {kind}" for name, kind, _ in _COLUMNS) + ")")
    except psycopg.errors.InsufficientPrivilege as exc:
        conn.rollback()
        raise InfrastructureError(
            "the audit holds the history in temporary tables, and this role may not create "
            f"them: {first_line(exc)} (GRANT TEMPORARY ON DATABASE ... TO the audit's "
            "role)") from None
    count = 0
    try:
        with conn.cursor() as cur, cur.copy(
                f"COPY pg_temp.audit_records ({', '.join(_NAMES)}) FROM STDIN") as copy:
            for count, record in enumerate(records, start=1):
                try:
                    copy.write_row(row(count, record))
                except (psycopg.DataError, UnicodeEncodeError) as exc:  # a NUL, a surrogate
                    raise HistoryError(f"history record {count} ({record.op}) cannot be "
                                       f"audited: {first_line(exc)}") from None
    except BaseException as exc:
        conn.rollback()  # the tables go with the transaction that created them
        if isinstance(exc, psycopg.DataError):
            raise HistoryError(f"the history cannot be audited: {first_line(exc)}") from None
        raise
    for statement in _DERIVED:
        conn.execute(statement)
    for table in _TABLES:
        conn.execute(f"ANALYZE pg_temp.{table}")
    conn.commit()
    return count


def prepare(conn: Connection, skew: float) -> None:
    """Inside the audit's snapshot: fill `audit_disagreements`, where the tasks and what the
    history says created them disagree (one FULL JOIN per audit, the seeded ids computed
    once, MATERIALIZED: the join would compute each twice): claimed seeded tasks that are
    missing or owned by another tenant (`claimed` set, `seed_seq` the task.seed record), and
    tasks in the phantom scope that nothing names (`claimed` NULL). `pos` is their order
    (creation time, id). Nothing to do without task.seed or run.start records."""
    scope = conn.execute(f"""
        SELECT count(*) FILTER (WHERE op = '{RUN_START}') AS starts,
               bool_and(complete) FILTER (WHERE op = '{RUN_START}') AS complete,
               min(t0) FILTER (WHERE op = '{RUN_START}') AS since,
               count(*) FILTER (WHERE op = '{TASK_SEED}') AS seeds
        FROM pg_temp.audit_records WHERE op IN ('{RUN_START}', '{TASK_SEED}')""").fetchone()
    assert scope is not None
    starts, complete, since, seeds = scope
    if not starts and not seeds:
        return
    seeded = SEEDED_TASK_ID_SQL.format(seed="r.seed", number="r.seed_number", n="n")
    conn.execute(f"""
        INSERT INTO pg_temp.audit_disagreements
        WITH s AS MATERIALIZED (
            SELECT r.seq, r.tenant, {seeded} AS id
            FROM pg_temp.audit_records r, generate_series(0, r.seed_count - 1) AS n
            WHERE r.op = '{TASK_SEED}')
        SELECT row_number() OVER (ORDER BY t.created_at, t.id, s.seq, s.id), s.seq, s.id,
               t.id, t.user_id,
               t.created_at
        FROM s FULL JOIN public.tasks t ON t.id = s.id
        WHERE CASE WHEN s.id IS NULL
                   THEN %(scoped)s AND (%(complete)s
                                        OR t.created_at >= to_timestamp(%(since)s))
                        AND NOT EXISTS (SELECT FROM pg_temp.audit_creates c
                                        WHERE c.task = t.id)
                   ELSE t.id IS NULL OR t.user_id <> s.tenant END""",
        {"scoped": bool(starts), "complete": bool(complete),
         "since": (since or 0.0) + skew})


def row(seq: int, r: HistoryRecord) -> tuple[Any, ...]:
    """The `audit_records` row of a record (in `_NAMES` order)."""
    args, observed, op = r.args, r.observed, r.op
    ok_or_unknown = r.outcome in MAY_HAVE_HAPPENED
    user_ref = args.get("user_id") or r.tenant
    wrote = args.get("wrote")
    write_task = (op == "task.create" and observed.get("task_id")) or op == "task.update"
    writes = wrote if ok_or_unknown and write_task and isinstance(wrote, dict) else None
    probe = op.startswith(PROBE_PREFIX)
    owners = observed.get("owner_ids") if r.tenant and not probe else None
    session = (_session_of(r) if op == "login" else
               args.get("session_id") or None if op == "logout" else None)
    installs, installs_user = _installs(r) if ok_or_unknown else (None, None)
    seen = observed.get("task_ids")
    return (
        seq, r.process, r.tenant, op, r.outcome, r.start, r.end, r.error,
        args.get("task_id") if op in _TASK_OPS else None,
        observed.get("task_id") or None,
        _uuid_or_none(user_ref),
        observed.get("user_id") or None,
        session,
        str(args.get("email", "")).strip().lower() if op in ("login", "user.register")
        else None,
        _normal_email(args.get("email")) if op == "user.register" else None,
        _label(args.get("password_id")) if op == "login" else None,
        installs, installs_user,
        _label(observed.get("password_id")) if op == "password.temporary" else None,
        isinstance(wrote, dict),
        args.get("from_status") if op == "task.transition" else None,
        args.get("to_status") if op == "task.transition" else None,
        args.get("complete") if op == RUN_START else None,
        *((args["seed"], args["tenant_number"], args["count"]) if op == TASK_SEED
          else (None, None, None)),
        any(observed.values()) if probe else None,
        Jsonb(observed) if probe else None,
        seen if isinstance(seen, list) else None,
        [o for o in owners if o != r.tenant] if isinstance(owners, list) else None,
        list(writes) if writes is not None else None,
        list(writes.values()) if writes is not None else None,
    )


_TASK_OPS = frozenset({"task.read", "task.update", "task.delete", "task.transition"})


def _uuid_or_none(value: object) -> str | None:
    """An id the checks can compare with the database's: a canonical UUID, else nothing (a
    value that is not one can match no row)."""
    return value if isinstance(value, str) and _is_uuid(value) else None


def _label(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _session_of(r: HistoryRecord) -> str | None:
    value = r.observed.get("session_id")
    return str(value) if value and value != "None" else None


def _installs(r: HistoryRecord) -> tuple[str | None, str | None]:
    """(label, user) of the password a record set, if it set one."""
    label = (r.args.get("password_id") if r.op == "user.register" else
             r.args.get("new_password_id") if r.op == "password.change" else
             r.observed.get("password_id") if r.op == "password.temporary" else None)
    if not isinstance(label, str):
        return None, None
    user = r.observed.get("user_id") if r.op == "user.register" else \
        r.args.get("user_id") or r.tenant
    return (label, user) if _is_uuid(user) else (None, None)


def _normal_email(email: object) -> str | None:
    """An email as taskhub stores it (NFKC, trimmed, lower case); None when it is not one."""
    try:
        return normalise_email(str(email))
    except TaskhubError:
        return None
