"""auth.*: stored credentials and sessions are what the auth rules promise."""

from __future__ import annotations

from checker.audit.check import Family
from checker.audit.context import AuditContext
from checker.audit.result import Finding

family = Family("auth")

PHC = (r"^\$argon2id\$v=19\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,10}"
       r"\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")
"""`$argon2id$v=19$m=M,t=T,p=P$salt$hash` (salt and hash in unpadded base64)."""
SCHEME = (r"^(\$[a-z0-9-]{1,32}\$(?:v=[0-9]{1,10}\$)?"
          r"(?:[a-z]=[0-9]{1,10}(?:,[a-z]=[0-9]{1,10})*)?)")
"""What a sample shows of a stored hash: its scheme and cost (`$argon2id$v=19$m=M,t=T,p=P`,
`$2b$`), never the salt, the digest, or a value that is no hash at all (a plain password)."""
SCHEME_PARAMS = {"scheme": SCHEME, "unknown": "(no $scheme$ prefix)"}


@family.check("argon2id_hashes",
              "every password hash, current or in password_history, is an Argon2id (v=19) "
              "PHC string with cost at or above the configured minimum")
def argon2id_hashes(ctx: AuditContext) -> Finding:
    """One violation per hash that is not Argon2id or is too cheap (a rehash on login
    replaces the password's history entry and drops cheaper ones, so history is held to the
    same minimum)."""
    minimum = ctx.options.min_argon2
    return ctx.finding("""
        SELECT h.source, h.user_id,
               coalesce(substring(h.hash from %(scheme)s), %(unknown)s) AS hash_scheme,
               CASE WHEN NOT h.phc THEN 'not an Argon2id v=19 PHC string'
                    ELSE 'cost m=' || c.m || ',t=' || c.t || ',p=' || c.p || ' below m='
                         || %(m)s || ',t=' || %(t)s || ',p=' || %(p)s END AS problem
        FROM (SELECT 'users' AS source, id AS user_id, password_hash AS hash,
                     password_hash ~ %(phc)s AS phc
              FROM users
              UNION ALL
              SELECT 'password_history', user_id, password_hash, password_hash ~ %(phc)s
              FROM password_history) AS h
        -- `$argon2id$v=19$m=M,t=T,p=P$salt$hash`: the 4th `$` field holds the costs
        CROSS JOIN LATERAL (
            SELECT split_part(split_part(split_part(h.hash, '$', 4), ',', 1), '=', 2) AS m,
                   split_part(split_part(split_part(h.hash, '$', 4), ',', 2), '=', 2) AS t,
                   split_part(split_part(split_part(h.hash, '$', 4), ',', 3), '=', 2) AS p
        ) AS c
        WHERE CASE WHEN NOT h.phc THEN true  -- CASE: cast only well-formed costs
                   ELSE c.m::bigint < %(m)s OR c.t::bigint < %(t)s OR c.p::bigint < %(p)s
              END""",
        {"phc": PHC, "m": minimum.memory_kib, "t": minimum.time_cost,
         "p": minimum.parallelism, **SCHEME_PARAMS},
        details={"minimum": str(minimum)})


@family.check("history_without_duplicates",
              "no user has the same password hash twice in password_history")
def history_without_duplicates(ctx: AuditContext) -> Finding:
    """One violation per (user, hash) pair stored more than once."""
    return ctx.finding("""
        SELECT user_id, coalesce(substring(password_hash from %(scheme)s), %(unknown)s)
                   AS hash_scheme, count(*) AS copies
        FROM password_history GROUP BY user_id, password_hash HAVING count(*) > 1""",
        SCHEME_PARAMS)


@family.check("no_session_before_password_change",
              "no live session (not revoked, not expired) was created before its user's last "
              "password change")
def no_session_before_password_change(ctx: AuditContext) -> Finding:
    """One violation per live session older than its user's password_changed_at."""
    return ctx.finding("""
        SELECT s.id AS session_id, s.user_id, s.created_at, u.password_changed_at
        FROM auth_sessions s JOIN users u ON u.id = s.user_id
        WHERE s.revoked_at IS NULL AND s.expires_at > now()
          AND s.created_at < u.password_changed_at""")


@family.check("temporary_passwords_expire",
              "every user who must change a temporary password has its expiry time")
def temporary_passwords_expire(ctx: AuditContext) -> Finding:
    """One violation per user with must_change_password and no temp_password_expires_at."""
    return ctx.finding("""
        SELECT id AS user_id, email FROM users
        WHERE must_change_password AND temp_password_expires_at IS NULL""")


@family.check("emails_unique", "no two users share an email, compared case-insensitively")
def emails_unique(ctx: AuditContext) -> Finding:
    """One violation per lower(email) held by more than one user."""
    return ctx.finding("""
        SELECT lower(email) AS email, count(*) AS users, array_agg(id ORDER BY id) AS user_ids
        FROM users GROUP BY lower(email) HAVING count(*) > 1""")
