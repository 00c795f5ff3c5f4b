"""ledger.* for accounts: registrations, sessions, logouts and password changes that clients were
told happened did happen, and stay so.

Only with a history. `unknown` outcomes explain either way; a user's rows are explained away
by any `ok` or `unknown` delete of the user. Real-time order between two records allows
`options.history_skew` seconds of clock disagreement, in the direction that accepts more.
Which password a login used is the client's opaque `password_id` label (`checker.history`).
"""

from __future__ import annotations

from typing import Any

from checker.audit.check import Family
from checker.audit.context import AuditContext
from checker.audit.ledger import RECORDS, brief_sql
from checker.audit.result import Finding
from checker.history import SEED_PASSWORD, WRONG_PASSWORD
from taskhub.errors import AuthError

family = Family("ledger")

def _subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    direct: type[Exception]
    for direct in cls.__subclasses__():
        found += [direct, *_subclasses(direct)]
    return found


REFUSED_CREDENTIALS = "InvalidCredentials"
"""How a recorded error names a refused email/password pair (`checker.load.recorder`)."""
_AUTH: list[type[Exception]] = [AuthError, *_subclasses(AuthError)]
AUTH_ERRORS = tuple(sorted(cls.__name__ for cls in _AUTH))
"""Every authentication refusal, as a recorded error names it."""

_DELETED_USER = "EXISTS (SELECT FROM pg_temp.audit_deleted_users gone_user WHERE gone_user.id = {})"


def _counts(ctx: AuditContext, op: str) -> dict[str, Any]:
    """How many records of `op` ended ok, ok with their id (`session`/`observed_user`), and
    unknown."""
    rows = ctx.rows(f"""
        SELECT count(*) FILTER (WHERE outcome = 'ok') AS ok,
               count(*) FILTER (WHERE outcome = 'ok' AND session IS NULL) AS ok_without_session,
               count(*) FILTER (WHERE outcome = 'unknown') AS unknown
        FROM {RECORDS} WHERE op = %(op)s""", {"op": op})
    return rows[0]


@family.check("acknowledged_registrations_persist",
              "every acknowledged user.register is in the database with its email, unless a "
              "delete of that user explains its absence", needs_history=True)
def acknowledged_registrations_persist(ctx: AuditContext) -> Finding:
    """One violation per ok registration whose user is missing or has another email."""
    counts, bad = ctx.tally(f"""
        SELECT CASE WHEN u.id IS NULL
                    THEN CASE WHEN {_DELETED_USER.format('r.observed_user')}
                              THEN 'explained' ELSE 'bad' END
                    WHEN lower(u.email) IS DISTINCT FROM r.email_norm THEN 'bad'
                    ELSE 'ok' END AS verdict,
               r.seq AS ord,
               {brief_sql('r', user_id='r.observed_user', problem=
                          "CASE WHEN u.id IS NULL THEN 'missing' ELSE 'email differs' END")}
                   AS sample
        FROM {RECORDS} r LEFT JOIN public.users u ON u.id = r.observed_user
        WHERE r.op = 'user.register' AND r.outcome = 'ok' AND r.observed_user IS NOT NULL""")
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": sum(counts.values()),
                    "explained_by_delete": counts.get("explained", 0),
                    "unknown": _counts(ctx, "user.register")["unknown"]})


@family.check("acknowledged_sessions_persist",
              "the session of every acknowledged login exists, for its user, and is revoked "
              "only if a logout of it or a password change of its user may have revoked it",
              needs_history=True)
def acknowledged_sessions_persist(ctx: AuditContext) -> Finding:
    """One violation per ok login whose session vanished, moved or was revoked unexplained."""
    # A logout recorded without its session (an older history) may have ended any session
    # of its user.
    counts, bad = ctx.tally(f"""
        WITH logouts AS MATERIALIZED (
                 SELECT session, user_ref FROM {RECORDS}
                 WHERE op = 'logout' AND outcome IN ('ok', 'unknown')),
             ended AS (SELECT DISTINCT session FROM logouts WHERE session IS NOT NULL),
             unnamed AS (SELECT DISTINCT user_ref FROM logouts
                         WHERE session IS NULL AND user_ref IS NOT NULL),
             logins AS (SELECT r.*, coalesce(r.observed_user, r.tenant) AS account
                        FROM {RECORDS} r
                        WHERE r.op = 'login' AND r.outcome = 'ok' AND r.session IS NOT NULL)
        SELECT CASE WHEN s.id IS NULL
                    THEN CASE WHEN {_DELETED_USER.format('r.account')}
                              THEN 'explained' ELSE 'bad' END
                    WHEN r.tenant IS NOT NULL AND r.account <> r.tenant THEN 'bad'
                    WHEN s.user_id IS DISTINCT FROM r.account THEN 'bad'
                    WHEN s.revoked_at IS NOT NULL AND e.session IS NULL
                         AND un.user_ref IS NULL
                         AND NOT EXISTS (SELECT FROM pg_temp.audit_changes c
                                         WHERE c.user_ref = r.account
                                               AND c.t1 + %(skew)s >= r.t0) THEN 'bad'
                    ELSE 'ok' END AS verdict,
               r.seq AS ord,
               {brief_sql('r', session_id='r.session', problem=_SESSION_PROBLEM)}
                   AS sample
        FROM logins r LEFT JOIN public.auth_sessions s ON s.id = r.session
             LEFT JOIN ended e ON e.session = r.session
             LEFT JOIN unnamed un ON un.user_ref = r.account""",
        {"skew": ctx.options.history_skew})
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": sum(counts.values()),
                    "explained_by_delete": counts.get("explained", 0)})


@family.check("acknowledged_logouts_persist",
              "the session of every acknowledged logout is revoked (or gone with its user)",
              needs_history=True)
def acknowledged_logouts_persist(ctx: AuditContext) -> Finding:
    """One violation per ok logout whose session is live (or vanished unexplained)."""
    counts, bad = ctx.tally(f"""
        SELECT CASE WHEN s.id IS NULL
                    THEN CASE WHEN {_DELETED_USER.format('r.user_ref')}
                              THEN 'explained' ELSE 'bad' END
                    WHEN s.revoked_at IS NULL THEN 'bad' ELSE 'ok' END AS verdict,
               r.seq AS ord,
               {brief_sql('r', session_id='r.session', problem=
                          "CASE WHEN s.id IS NULL THEN 'missing' ELSE 'still live' END")}
                   AS sample
        FROM {RECORDS} r LEFT JOIN public.auth_sessions s ON s.id = r.session
        WHERE r.op = 'logout' AND r.outcome = 'ok' AND r.session IS NOT NULL""")
    logouts = _counts(ctx, "logout")
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged": sum(counts.values()),
                    "unchecked_without_session_id": logouts["ok_without_session"],
                    "unknown": logouts["unknown"]})


_SESSION_PROBLEM = """
    CASE WHEN s.id IS NULL THEN 'missing'
         WHEN r.tenant IS NOT NULL AND r.account <> r.tenant THEN 'signed in as ' || r.account
         WHEN s.user_id IS DISTINCT FROM r.account THEN 'belongs to ' || s.user_id
         ELSE 'revoked without a logout or a password change' END"""

# Logins by the account they were for (the record's tenant, else the user it signed in as,
# else the user of its email: registered in the history, or in the database now), each with
# `first`, the account's first login (the order accounts are reported in); `uses`, those
# with a password label whose installer is known: the record that set that password last
# (`inst_*`; the seed password, set before the run, has none: -infinity).
_LOGINS = f"""
    by_email AS (
        SELECT DISTINCT ON (email_key) email_key, observed_user FROM {RECORDS}
        WHERE op = 'user.register' AND outcome = 'ok' AND observed_user IS NOT NULL
        ORDER BY email_key, seq DESC),
    grouped AS MATERIALIZED (
        SELECT l.*, min(l.seq) OVER (PARTITION BY l.account) AS first
        FROM (SELECT r.seq, r.t0, r.t1, r.outcome, r.session, r.password_id, r.error,
                     coalesce(r.tenant, r.observed_user, b.observed_user,
                              (SELECT u.id FROM public.users u WHERE lower(u.email) = r.email_key
                               LIMIT 1)) AS account
              FROM {RECORDS} r LEFT JOIN by_email b ON b.email_key = r.email_key
              WHERE r.op = 'login') AS l
        WHERE l.account IS NOT NULL),
    installers AS (
        SELECT DISTINCT ON (installs_user, installs) installs_user, installs, seq, op, t0, t1
        FROM {RECORDS} WHERE installs IS NOT NULL
        ORDER BY installs_user, installs, seq DESC),
    uses AS MATERIALIZED (
        SELECT g.*, i.seq AS inst_seq, coalesce(i.op, 'seed') AS inst_op,
               coalesce(i.t0, '-Infinity') AS inst_t0, coalesce(i.t1, '-Infinity') AS inst_t1
        FROM grouped g LEFT JOIN installers i
             ON i.installs_user = g.account AND i.installs = g.password_id
        WHERE g.password_id <> '{WRONG_PASSWORD}'
              AND (i.seq IS NOT NULL OR g.password_id = '{SEED_PASSWORD}')),
    acked AS (SELECT * FROM pg_temp.audit_changes WHERE outcome = 'ok')"""


@family.check("password_changes_take_effect",
              "after an acknowledged password change or temporary password, the user's "
              "earlier sessions are revoked, logins with a replaced password fail and the new "
              "one works; a temporary password signs in once; a wrong password never does",
              needs_history=True)
def password_changes_take_effect(ctx: AuditContext) -> Finding:
    """One violation per live earlier session, accepted replaced or wrong password, refused
    current password, or second use of a temporary password."""
    counts, bad = ctx.tally(f"""
        WITH {_LOGINS}
        SELECT 'bad' AS verdict, ARRAY[0, r.seq, 0] AS ord,
               {brief_sql('r', problem="'a wrong password signed in'")} AS sample
        FROM {RECORDS} r
        WHERE r.op = 'login' AND r.outcome = 'ok' AND r.password_id = '{WRONG_PASSWORD}'
        UNION ALL  -- an acknowledged login's session, and the first acknowledged change that
                   -- began after it returned (that one must have revoked it)
        SELECT 'bad', ARRAY[1, g.first, g.seq],
               {brief_sql('rc', user_id='c.user_ref', session_id='g.session',
                          problem="'a session from before it is live'")}
        FROM grouped g
             CROSS JOIN LATERAL (SELECT c.seq, c.user_ref FROM acked c
                                 WHERE c.user_ref = g.account AND c.t0 > g.t1 + %(skew)s
                                 ORDER BY c.t0, c.seq LIMIT 1) AS c
             JOIN {RECORDS} rc ON rc.seq = c.seq
             JOIN public.auth_sessions s ON s.id = g.session
        WHERE g.outcome = 'ok' AND g.session IS NOT NULL AND s.revoked_at IS NULL
        UNION ALL  -- a password replaced before the login began signed in
        SELECT 'bad', ARRAY[2, u.first, u.seq],
               {brief_sql('r', user_id='u.account', replaced_by=brief_sql('rc'),
                          problem="'a replaced password signed in'")}
        FROM uses u JOIN {RECORDS} r ON r.seq = u.seq
             CROSS JOIN LATERAL (SELECT c.seq FROM acked c
                                 WHERE c.user_ref = u.account
                                       AND u.inst_t1 + %(skew)s < c.t0
                                       AND c.t1 + %(skew)s < u.t0
                                 ORDER BY c.t0, c.seq LIMIT 1) AS c
             JOIN {RECORDS} rc ON rc.seq = c.seq
        WHERE u.outcome = 'ok'
        UNION ALL  -- the password certainly current for the whole login was refused
        SELECT 'bad', ARRAY[2, u.first, u.seq],
               {brief_sql('r', user_id='u.account',
                          problem="'the current password was refused'")}
        FROM uses u JOIN {RECORDS} r ON r.seq = u.seq
        WHERE u.outcome <> 'ok'
              AND CASE WHEN u.inst_op = 'password.temporary'  -- its second use is refused
                       THEN starts_with(coalesce(u.error, ''), %(credentials)s)
                       ELSE EXISTS (SELECT FROM unnest(%(auth)s::text[]) AS a (kind)
                                    WHERE starts_with(coalesce(u.error, ''), a.kind)) END
              AND NOT {_DELETED_USER.format('u.account')}
              AND u.inst_t1 + %(skew)s < u.t0
              AND NOT EXISTS (SELECT FROM pg_temp.audit_changes c
                              WHERE c.user_ref = u.account AND c.seq IS DISTINCT FROM u.inst_seq
                                    AND c.t1 + %(skew)s >= u.inst_t0
                                    AND c.t0 <= u.t1 + %(skew)s)
        UNION ALL  -- a temporary password signed in twice
        SELECT 'bad', ARRAY[3, t.first[1], t.first[2]],
               {brief_sql('r', user_id='t.account', uses='t.n',
                          problem="'a temporary password signed in more than once'")}
        FROM (SELECT account, password_id, count(*) AS n, min(ARRAY[first, seq]) AS first,
                     (array_agg(seq ORDER BY seq))[2] AS second
              FROM uses WHERE outcome = 'ok' GROUP BY account, password_id
              HAVING count(*) > 1) AS t
             JOIN {RECORDS} r ON r.seq = t.second
        WHERE EXISTS (SELECT FROM pg_temp.audit_changes c
                      WHERE c.op = 'password.temporary' AND c.user_ref = t.account
                            AND c.temp_label = t.password_id)
        UNION ALL  -- what was looked at, counted in the same pass (details)
        SELECT 'login checked', ARRAY[4, 0, 0]::bigint[], NULL::jsonb FROM grouped
        UNION ALL
        SELECT 'acknowledged change', ARRAY[4, 0, 0]::bigint[], NULL::jsonb FROM acked""",
        {"skew": ctx.options.history_skew, "credentials": REFUSED_CREDENTIALS,
         "auth": list(AUTH_ERRORS)})
    return Finding(counts.get("bad", 0), bad,
                   {"acknowledged_changes": counts.get("acknowledged change", 0),
                    "logins_checked": counts.get("login checked", 0)})
