"""ledger.* for accounts: registrations, sessions, logouts and password changes that clients were
told happened did happen, and stay so.

Only with a history. `unknown` outcomes explain either way; a user's rows are explained away
by any `ok` or `unknown` delete of the user. Real-time order between two records allows
`options.history_skew` seconds of clock disagreement, in the direction that accepts more.
Which password a login used is the client's opaque `password_id` label (`checker.history`).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.ledger import MAY_HAVE_HAPPENED, Deletions, brief
from checker.audit.result import Finding
from checker.history import SEED_PASSWORD, WRONG_PASSWORD, HistoryRecord
from taskhub.errors import AuthError, TaskhubError
from taskhub.users import normalise_email

family = Family("ledger")


def _subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found: list[type[Exception]] = []
    direct: type[Exception]
    for direct in cls.__subclasses__():
        found += [direct, *_subclasses(direct)]
    return found


CREDENTIAL_CHANGES = ("password.change", "password.temporary")
REFUSED_CREDENTIALS = "InvalidCredentials"
"""How a recorded error names a refused email/password pair (`checker.load.recorder`)."""
_AUTH: list[type[Exception]] = [AuthError, *_subclasses(AuthError)]
AUTH_ERRORS = tuple(sorted(cls.__name__ for cls in _AUTH))
"""Every authentication refusal, as a recorded error names it."""


def _user_of(r: HistoryRecord) -> str | None:
    """The account a record is about: its `user_id` argument, else its tenant."""
    value = r.args.get("user_id") or r.tenant
    return str(value) if value else None


def _session_of(r: HistoryRecord) -> str | None:
    value = r.observed.get("session_id")
    return str(value) if value and value != "None" else None


@family.check("acknowledged_registrations_persist",
              "every acknowledged user.register is in the database with its email, unless a "
              "delete of that user explains its absence", needs_history=True)
def acknowledged_registrations_persist(ctx: AuditContext) -> Finding:
    """One violation per ok registration whose user is missing or has another email."""
    records = ctx.history or ()
    registers = [r for r in records if r.op == "user.register"]
    acked = [r for r in registers if r.outcome == "ok" and r.observed.get("user_id")]
    found = _rows_by_id(ctx, "SELECT id, lower(email) AS email FROM users "
                        "WHERE id = ANY (%(ids)s::uuid[])",
                        [str(r.observed["user_id"]) for r in acked])
    deleted = Deletions.in_history(ctx).users
    bad, explained = [], 0
    for r in acked:
        user = str(r.observed["user_id"])
        row = found.get(user)
        if row is None:
            if user in deleted:
                explained += 1
            else:
                bad.append(brief(r, user_id=user, problem="missing"))
        elif row["email"] != _normal_email(r.args.get("email")):
            bad.append(brief(r, user_id=user, problem="email differs"))
    return Finding(len(bad), sample(bad, ctx.options),
                   {"acknowledged": len(acked), "explained_by_delete": explained,
                    "unknown": sum(1 for r in registers if r.outcome == "unknown")})


@family.check("acknowledged_sessions_persist",
              "the session of every acknowledged login exists, for its user, and is revoked "
              "only if a logout of it or a password change of its user may have revoked it",
              needs_history=True)
def acknowledged_sessions_persist(ctx: AuditContext) -> Finding:
    """One violation per ok login whose session vanished, moved or was revoked unexplained."""
    records = ctx.history or ()
    logins = [r for r in records if r.op == "login" and r.outcome == "ok" and _session_of(r)]
    sessions = _sessions(ctx, [s for r in logins if (s := _session_of(r))])
    deleted = Deletions.in_history(ctx).users
    logouts = [r for r in records if r.op == "logout" and r.outcome in MAY_HAVE_HAPPENED]
    logged_out = {str(r.args["session_id"]) for r in logouts if r.args.get("session_id")}
    # A logout recorded without its session (an older history) may have ended any session
    # of its user.
    unnamed_logouts = {_user_of(r) for r in logouts if not r.args.get("session_id")}
    changes = _by_user(r for r in records
                       if r.op in CREDENTIAL_CHANGES and r.outcome in MAY_HAVE_HAPPENED)
    skew = ctx.options.history_skew
    bad, explained = [], 0
    for r in logins:
        session, user = _session_of(r), str(r.observed.get("user_id") or r.tenant)
        row = sessions.get(str(session))
        if row is None:
            if user in deleted:
                explained += 1
                continue
            bad.append(brief(r, session_id=session, problem="missing"))
        elif r.tenant and user != r.tenant:
            bad.append(brief(r, session_id=session, problem=f"signed in as {user}"))
        elif str(row["user_id"]) != user:
            bad.append(brief(r, session_id=session, problem=f"belongs to {row['user_id']}"))
        elif row["revoked"] and session not in logged_out and user not in unnamed_logouts \
                and not any(
                c.end + skew >= r.start for c in changes.get(user, ())):
            bad.append(brief(r, session_id=session,
                              problem="revoked without a logout or a password change"))
    return Finding(len(bad), sample(bad, ctx.options),
                   {"acknowledged": len(logins), "explained_by_delete": explained})


@family.check("acknowledged_logouts_persist",
              "the session of every acknowledged logout is revoked (or gone with its user)",
              needs_history=True)
def acknowledged_logouts_persist(ctx: AuditContext) -> Finding:
    """One violation per ok logout whose session is live (or vanished unexplained)."""
    records = ctx.history or ()
    logouts = [r for r in records if r.op == "logout"]
    acked = [r for r in logouts if r.outcome == "ok" and r.args.get("session_id")]
    sessions = _sessions(ctx, [str(r.args["session_id"]) for r in acked])
    deleted = Deletions.in_history(ctx).users
    bad = []
    for r in acked:
        session = str(r.args["session_id"])
        row = sessions.get(session)
        if row is None:
            if _user_of(r) not in deleted:
                bad.append(brief(r, session_id=session, problem="missing"))
        elif not row["revoked"]:
            bad.append(brief(r, session_id=session, problem="still live"))
    return Finding(len(bad), sample(bad, ctx.options),
                   {"acknowledged": len(acked),
                    "unchecked_without_session_id": sum(
                        1 for r in logouts if r.outcome == "ok" and not r.args.get("session_id")),
                    "unknown": sum(1 for r in logouts if r.outcome == "unknown")})


@dataclass(frozen=True)
class Installed:
    """When a password label became its user's password: the record that set it (None: the
    seed, set before the run)."""

    start: float
    end: float
    record: HistoryRecord | None = None


BEFORE_THE_RUN = Installed(-math.inf, -math.inf)


def _installers(records: Sequence[HistoryRecord]) -> dict[tuple[str, str], Installed]:
    """(user, password label) -> the record that set that password (seed: before the run)."""
    installed: dict[tuple[str, str], Installed] = {}
    for r in records:
        if r.outcome not in MAY_HAVE_HAPPENED:
            continue
        user = str(r.observed.get("user_id")) if r.op == "user.register" else _user_of(r)
        label = (r.args.get("password_id") if r.op == "user.register" else
                 r.args.get("new_password_id") if r.op == "password.change" else
                 r.observed.get("password_id") if r.op == "password.temporary" else None)
        if user and isinstance(label, str):
            installed[(user, label)] = Installed(r.start, r.end, r)
    return installed


@family.check("password_changes_take_effect",
              "after an acknowledged password change or temporary password, the user's "
              "earlier sessions are revoked, logins with a replaced password fail and the new "
              "one works; a temporary password signs in once; a wrong password never does",
              needs_history=True)
def password_changes_take_effect(ctx: AuditContext) -> Finding:
    """One violation per live earlier session, accepted replaced or wrong password, refused
    current password, or second use of a temporary password."""
    records = ctx.history or ()
    skew = ctx.options.history_skew
    changes = _by_user(r for r in records if r.op in CREDENTIAL_CHANGES
                       and r.outcome in MAY_HAVE_HAPPENED)
    acked_changes = {user: sorted((c for c in cs if c.outcome == "ok"), key=lambda c: c.start)
                     for user, cs in changes.items()}
    all_logins = [r for r in records if r.op == "login"]
    bad: list[dict[str, Any]] = [brief(r, problem="a wrong password signed in")
                                 for r in all_logins if r.outcome == "ok"
                                 and r.args.get("password_id") == WRONG_PASSWORD]
    logins = _logins_by_user(ctx, records, all_logins)
    installers = _installers(records)
    deleted = Deletions.in_history(ctx).users
    # Each acknowledged login with a session, paired with the first acknowledged change that
    # began after it returned (that one must have revoked it; later ones find it revoked).
    earlier = []
    for user, attempts in logins.items():
        starts = [c.start for c in acked_changes.get(user, ())]
        for login in attempts:
            if login.outcome == "ok" and _session_of(login):
                at = bisect.bisect_right(starts, login.end + skew)
                if at < len(starts):
                    earlier.append((acked_changes[user][at], login))
    sessions = _sessions(ctx, [str(_session_of(login)) for _, login in earlier])
    for change, login in earlier:
        row = sessions.get(str(_session_of(login)))
        if row is not None and not row["revoked"]:
            bad.append(brief(change, user_id=_user_of(change), session_id=_session_of(login),
                              problem="a session from before it is live"))
    temporary_uses: dict[tuple[str, str], list[HistoryRecord]] = defaultdict(list)
    for user, attempts in logins.items():
        for login in attempts:
            label = login.args.get("password_id")
            if not isinstance(label, str) or label == WRONG_PASSWORD:
                continue
            installer = installers.get((user, label),
                                       BEFORE_THE_RUN if label == SEED_PASSWORD else None)
            if installer is None:
                continue
            if login.outcome == "ok":
                replaced = next((c for c in acked_changes.get(user, ())
                                 if installer.end + skew < c.start
                                 and c.end + skew < login.start), None)
                if replaced is not None:
                    bad.append(brief(login, user_id=user, replaced_by=brief(replaced),
                                      problem="a replaced password signed in"))
                temporary_uses[(user, label)].append(login)
            elif (_refused(login, installer) and user not in deleted
                  and _current_at(installer, login, changes.get(user, ()), skew)):
                bad.append(brief(login, user_id=user,
                                  problem="the current password was refused"))
    temporaries = {(user, str(c.observed["password_id"])) for user, cs in changes.items()
                   for c in cs if c.op == "password.temporary" and c.observed.get("password_id")}
    for key, uses in temporary_uses.items():
        if key in temporaries and len(uses) > 1:
            bad.append(brief(uses[1], user_id=key[0], uses=len(uses),
                              problem="a temporary password signed in more than once"))
    return Finding(len(bad), sample(bad, ctx.options),
                   {"acknowledged_changes": sum(map(len, acked_changes.values())),
                    "logins_checked": sum(map(len, logins.values()))})


def _refused(login: HistoryRecord, installer: Installed) -> bool:
    """Whether a failed login was refused by the authentication: for a temporary password
    (whose second use is refused on purpose) only as a wrong password, otherwise for any
    authentication error."""
    error = str(login.error or "")
    temporary = installer.record is not None and installer.record.op == "password.temporary"
    refusals = (REFUSED_CREDENTIALS,) if temporary else AUTH_ERRORS
    return error.startswith(refusals)


def _logins_by_user(ctx: AuditContext, records: Sequence[HistoryRecord],
                    logins: list[HistoryRecord]) -> dict[str, list[HistoryRecord]]:
    """Logins by the account they were for: the record's tenant, else the user it signed in
    as, else the user of its email (registered in the history, or in the database now)."""
    by_email = {str(r.args.get("email", "")).strip().lower(): str(r.observed["user_id"])
                for r in records if r.op == "user.register" and r.outcome == "ok"
                and r.observed.get("user_id")}
    unknown = sorted({str(r.args.get("email", "")).strip().lower() for r in logins
                      if not (r.tenant or r.observed.get("user_id"))} - set(by_email))
    if unknown:
        by_email.update({str(row["email"]): str(row["id"]) for row in ctx.rows(
            "SELECT id, lower(email) AS email FROM users WHERE lower(email) = ANY (%(e)s)",
            {"e": unknown})})
    grouped: dict[str, list[HistoryRecord]] = defaultdict(list)
    for r in logins:
        user = r.tenant or r.observed.get("user_id") or by_email.get(
            str(r.args.get("email", "")).strip().lower())
        if user:
            grouped[str(user)].append(r)
    return grouped


def _current_at(installer: Installed, login: HistoryRecord, changes: Iterable[HistoryRecord],
                skew: float) -> bool:
    """Whether the password set by `installer` was certainly the user's password for the whole
    of `login`: set before it began, and no other change (that may have happened) between."""
    if installer.end + skew >= login.start:
        return False
    return not any(c is not installer.record and c.end + skew >= installer.start
                   and c.start <= login.end + skew for c in changes)


def _by_user(records: Iterable[HistoryRecord]) -> dict[str, list[HistoryRecord]]:
    grouped: dict[str, list[HistoryRecord]] = defaultdict(list)
    for r in records:
        if (user := _user_of(r)) is not None:
            grouped[user].append(r)
    return grouped


def _sessions(ctx: AuditContext, ids: list[str]) -> dict[str, dict[str, Any]]:
    return _rows_by_id(ctx, "SELECT id, user_id, revoked_at IS NOT NULL AS revoked "
                       "FROM auth_sessions WHERE id = ANY (%(ids)s::uuid[])", ids)


def _normal_email(email: object) -> str | None:
    """An email as taskhub stores it (NFKC, trimmed, lower case); None when it is not one."""
    try:
        return normalise_email(str(email))
    except TaskhubError:
        return None


def _rows_by_id(ctx: AuditContext, query: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    return {str(row["id"]): row for row in ctx.rows(query, {"ids": sorted(set(ids))})}
