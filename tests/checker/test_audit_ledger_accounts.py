"""ledger.* for accounts: registrations, sessions, logouts and password changes the history
acknowledges, against the database."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL

from checker.audit.synthetic import user_id
from checker.history import (
    SEED_PASSWORD,
    WRONG_PASSWORD,
    HistoryError,
    HistoryRecord,
    read_history,
)
from tests.checker.audit_support import assert_fails_only, audit, full_history, owner, seed

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

REGISTRATIONS = "ledger.acknowledged_registrations_persist"
SESSIONS = "ledger.acknowledged_sessions_persist"
LOGOUTS = "ledger.acknowledged_logouts_persist"
CHANGES = "ledger.password_changes_take_effect"
U1 = str(user_id(1))
NOW = time.time() - 3600  # after full_history()'s records


def rec(op: str, at: float, outcome: str = "ok", *, tenant: str | None = U1,
        observed: dict[str, Any] | None = None, error: str | None = None,
        **args: Any) -> HistoryRecord:
    return HistoryRecord("client-1", tenant, op, args, at, at + 0.01, outcome,  # type: ignore[arg-type]
                         observed or {}, error if error or outcome == "ok" else "boom")


def live_session(url: URL, user: str = U1) -> str:
    """The synthetic population's one live session of `user`."""
    with owner(url) as conn:
        row = conn.execute("SELECT id FROM auth_sessions WHERE user_id = %s AND revoked_at IS "
                           "NULL AND expires_at > now()", (user,)).fetchone()
    assert row is not None
    return str(row[0])


def login(at: float, session: str | None = None, outcome: str = "ok",
          password_id: str = SEED_PASSWORD, error: str | None = None) -> HistoryRecord:
    observed = {"user_id": U1, "session_id": session} if outcome == "ok" else {}
    return rec("login", at, outcome, observed=observed, error=error,
               email="user1@example.com", password_id=password_id)


def change(at: float, outcome: str = "ok", *, old: str = SEED_PASSWORD,
           new: str = "label-new") -> HistoryRecord:
    return rec("password.change", at, outcome, user_id=U1, old_password_id=old,
               new_password_id=new)


def revoke(url: URL, session: str) -> None:
    with owner(url) as conn:
        conn.execute("UPDATE auth_sessions SET revoked_at = now() WHERE id = %s", (session,))


def history(*records: HistoryRecord) -> list[HistoryRecord]:
    return [*full_history(), *records]


# Registrations.

def registration(at: float, user: str = U1, email: str = "user1@example.com") -> HistoryRecord:
    return rec("user.register", at, tenant=None, observed={"user_id": user}, email=email,
               password_id="label-r")


def test_an_acknowledged_registration_passes(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, history(registration(NOW, email="User1@Example.com")))
    assert_fails_only(result)
    assert result.get(REGISTRATIONS).details["acknowledged"] == 1


def test_a_registered_user_lost(db_url: URL) -> None:
    seed(db_url)
    ghost = str(uuid.uuid4())
    result = audit(db_url, history(registration(NOW, user=ghost)))
    assert_fails_only(result, REGISTRATIONS)
    [row] = result.get(REGISTRATIONS).samples
    assert (row["user_id"], row["problem"]) == (ghost, "missing")


def test_a_registered_user_with_another_email(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, history(registration(NOW, email="someone@else.test")))
    assert_fails_only(result, REGISTRATIONS)
    assert result.get(REGISTRATIONS).samples[0]["problem"] == "email differs"


@pytest.mark.parametrize("outcome", ["ok", "unknown"])
def test_a_registration_gone_with_a_delete_of_the_user(db_url: URL, outcome: str) -> None:
    seed(db_url)
    ghost = str(uuid.uuid4())
    deleted = rec("user.delete", NOW + 1, outcome, tenant=ghost, user_id=ghost)
    result = audit(db_url, history(registration(NOW, user=ghost), deleted), only="ledger")
    assert result.ok, result.summary()
    assert result.get(REGISTRATIONS).details["explained_by_delete"] == 1


# Sessions of logins.

def test_a_login_whose_session_is_live_passes(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, history(login(NOW, live_session(db_url))))
    assert_fails_only(result)
    assert result.get(SESSIONS).details["acknowledged"] == 1


def test_a_login_whose_session_vanished(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    with owner(db_url) as conn:
        conn.execute("DELETE FROM auth_sessions WHERE id = %s", (session,))
    result = audit(db_url, history(login(NOW, session)))
    assert_fails_only(result, SESSIONS)
    [row] = result.get(SESSIONS).samples
    assert (row["session_id"], row["problem"]) == (session, "missing")


def test_a_login_whose_session_was_revoked_without_cause(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    revoke(db_url, session)
    result = audit(db_url, history(login(NOW, session)))
    assert_fails_only(result, SESSIONS)
    assert result.get(SESSIONS).samples[0]["problem"] == \
        "revoked without a logout or a password change"


@pytest.mark.parametrize("cause", ["logout", "unknown logout", "change", "temporary"])
def test_a_revoked_session_explained(db_url: URL, cause: str) -> None:
    seed(db_url)
    session = live_session(db_url)
    revoke(db_url, session)
    because = {
        "logout": rec("logout", NOW + 1, session_id=session),
        "unknown logout": rec("logout", NOW + 1, "unknown", session_id=session),
        "change": change(NOW + 1, "unknown"),
        "temporary": rec("password.temporary", NOW + 1, user_id=U1,
                         observed={"password_id": "label-t"}),
    }[cause]
    result = audit(db_url, history(login(NOW, session), because), only="ledger")
    assert result.ok, result.summary()


# Logouts.

def test_an_acknowledged_logout_whose_session_is_live(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    result = audit(db_url, history(login(NOW, session), rec("logout", NOW + 1,
                                                            session_id=session)))
    assert_fails_only(result, LOGOUTS)
    [row] = result.get(LOGOUTS).samples
    assert (row["session_id"], row["problem"]) == (session, "still live")


def test_an_acknowledged_logout_whose_session_is_revoked_passes(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    revoke(db_url, session)
    result = audit(db_url, history(login(NOW, session), rec("logout", NOW + 1,
                                                            session_id=session)))
    assert_fails_only(result)


def test_a_failed_logout_proves_nothing(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    result = audit(db_url, history(rec("logout", NOW, "fail", session_id=session)),
                   only="ledger")
    assert result.ok


# Password changes.

def test_a_session_from_before_a_change_is_still_live(db_url: URL) -> None:
    """The database-side check sees nothing (the user's password_changed_at is older than
    the session); the history says the change came after the login."""
    seed(db_url)
    session = live_session(db_url)
    result = audit(db_url, history(login(NOW, session), change(NOW + 1)))
    assert_fails_only(result, CHANGES)
    [row] = result.get(CHANGES).samples
    assert (row["session_id"], row["problem"]) == (session, "a session from before it is live")


def test_a_change_that_revoked_the_earlier_session_passes(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    revoke(db_url, session)
    result = audit(db_url, history(login(NOW, session), change(NOW + 1)))
    assert_fails_only(result)
    assert result.get(CHANGES).details == {"acknowledged_changes": 1, "logins_checked": 1}


def test_a_replaced_password_signed_in(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    result = audit(db_url, history(change(NOW), login(NOW + 1, session)))
    assert_fails_only(result, CHANGES)
    [row] = result.get(CHANGES).samples
    assert row["problem"] == "a replaced password signed in"
    assert row["replaced_by"]["op"] == "password.change"


def test_a_replaced_password_may_sign_in_while_the_change_runs(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    overlapping = login(NOW + 0.005, session)
    revoke(db_url, session)  # the change revoked it
    assert_fails_only(audit(db_url, history(change(NOW), overlapping)))


def test_the_new_password_refused_after_a_change(db_url: URL) -> None:
    seed(db_url)
    refused = login(NOW + 1, outcome="fail", password_id="label-new",
                    error="InvalidCredentials: unknown email or wrong password")
    result = audit(db_url, history(change(NOW), refused))
    assert_fails_only(result, CHANGES)
    assert result.get(CHANGES).samples[0]["problem"] == "the current password was refused"


@pytest.mark.parametrize("between", ["unknown change", "temporary", "delete"])
def test_the_new_password_refused_explained(db_url: URL, between: str) -> None:
    seed(db_url)
    refused = login(NOW + 2, outcome="fail", password_id="label-new",
                    error="InvalidCredentials: unknown email or wrong password")
    explanation = {
        "unknown change": change(NOW + 1, "unknown", old="label-new", new="label-3"),
        "temporary": rec("password.temporary", NOW + 1, "unknown", user_id=U1),
        "delete": rec("user.delete", NOW + 1, "unknown", user_id=U1),
    }[between]
    result = audit(db_url, history(change(NOW), explanation, refused), only=CHANGES)
    assert result.ok, result.summary()


def test_the_seed_password_refused_before_any_change(db_url: URL) -> None:
    seed(db_url)
    refused = login(NOW, outcome="fail", error="InvalidCredentials: wrong password")
    result = audit(db_url, history(refused))
    assert_fails_only(result, CHANGES)


def test_a_wrong_password_signed_in(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, history(login(NOW, live_session(db_url),
                                         password_id=WRONG_PASSWORD)))
    assert_fails_only(result, CHANGES)
    assert result.get(CHANGES).samples[0]["problem"] == "a wrong password signed in"


def test_a_temporary_password_signed_in_twice(db_url: URL) -> None:
    seed(db_url)
    session = live_session(db_url)
    issued = rec("password.temporary", NOW, user_id=U1, observed={"password_id": "label-t"})
    uses = [login(NOW + 1 + i, session, password_id="label-t") for i in range(2)]
    result = audit(db_url, history(issued, *uses))
    assert_fails_only(result, CHANGES)
    assert any(r["problem"] == "a temporary password signed in more than once"
               for r in result.get(CHANGES).samples)


def test_a_login_recorded_without_its_tenant_is_still_checked(db_url: URL) -> None:
    """A client that records no tenant before it is signed in: the login is matched to its
    account by email."""
    seed(db_url)
    anonymous = HistoryRecord("client-1", None, "login", {"email": "User1@example.com",
                                                          "password_id": SEED_PASSWORD},
                              NOW + 1, NOW + 1.01, "fail", error="InvalidCredentials: no")
    result = audit(db_url, history(change(NOW, old="label-0", new=SEED_PASSWORD), anonymous),
                   only=CHANGES)
    assert [r["problem"] for r in result.get(CHANGES).samples] == [
        "the current password was refused"]


def test_a_wrong_password_accepted_without_a_tenant(db_url: URL) -> None:
    seed(db_url)
    accepted = rec("login", NOW, tenant=None, observed={"user_id": U1},
                   email="user1@example.com", password_id=WRONG_PASSWORD)
    result = audit(db_url, history(accepted), only=CHANGES)
    assert [r["problem"] for r in result.get(CHANGES).samples] == ["a wrong password signed in"]


def test_the_current_password_refused_as_an_expired_temporary_one(db_url: URL) -> None:
    """A change that left the account demanding a temporary password's change: every login
    with the new password is refused, whatever the refusal says."""
    seed(db_url)
    refused = login(NOW + 1, outcome="fail", password_id="label-new",
                    error="TemporaryPasswordExpired: the temporary password has expired")
    result = audit(db_url, history(change(NOW), refused), only=CHANGES)
    assert [r["problem"] for r in result.get(CHANGES).samples] == [
        "the current password was refused"]


def test_a_login_that_signed_in_as_another_user(db_url: URL) -> None:
    seed(db_url)
    other = str(user_id(2))
    session = live_session(db_url, other)
    wrong = rec("login", NOW, observed={"user_id": other, "session_id": session},
                email="user1@example.com", password_id=SEED_PASSWORD)
    result = audit(db_url, history(wrong), only=SESSIONS)
    assert [r["problem"] for r in result.get(SESSIONS).samples] == [f"signed in as {other}"]


def test_ids_in_another_spelling_are_refused_not_ignored(db_url: URL, tmp_path: Path) -> None:
    """An upper-case id would never match the database's text: the history is malformed."""
    record = {"process": "p", "tenant": None, "op": "task.update", "args": {
        "task_id": str(uuid.uuid4()).upper()}, "start": 1.0, "end": 1.0, "outcome": "ok"}
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(HistoryError, match=r"task\.update needs args\.task_id"):
        read_history(path)
