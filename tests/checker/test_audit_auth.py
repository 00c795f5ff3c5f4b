"""auth.*: weak or foreign hashes, repeated history, sessions that outlived a password."""

from __future__ import annotations

import pytest
from sqlalchemy import URL

from checker.audit import OWASP_MINIMUM, Argon2Minimum
from checker.audit.render import to_json
from checker.audit.synthetic import fake_argon2id, user_id
from tests.checker.audit_support import (
    assert_fails_only,
    audit,
    failing,
    owner,
    sampled,
    seed,
)

pytestmark = pytest.mark.checker_no_audit  # every test here damages its database on purpose

U1 = str(user_id(1))
BCRYPT = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


@pytest.mark.parametrize(("bad_hash", "shown"), [
    (BCRYPT, "$2b$"),
    ("$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
     "$argon2i$v=19$m=65536,t=3,p=4"),
    ("$argon2id$v=16$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
     "$argon2id$v=16$m=65536,t=3,p=4"),
    ("$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ", "$argon2id$v=19$m=65536,t=3,p=4"),
    ("plain text password", "(no $scheme$ prefix)"),
], ids=["bcrypt", "argon2i", "old-version", "truncated", "plain"])
def test_current_hash_not_argon2id(db_url: URL, bad_hash: str, shown: str) -> None:
    """The sample names the scheme and cost, never the salt, the digest or a plain value."""
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (bad_hash, U1))
    result = audit(db_url)
    assert_fails_only(result, "auth.argon2id_hashes")
    assert result.get("auth.argon2id_hashes").samples == [
        {"source": "users", "user_id": U1, "hash_scheme": shown,
         "problem": "not an Argon2id v=19 PHC string"}]


def test_history_hash_not_argon2id(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE password_history SET password_hash = %s WHERE user_id = %s",
                     (BCRYPT, U1))
    result = audit(db_url)
    assert_fails_only(result, "auth.argon2id_hashes")
    assert sampled(result, "auth.argon2id_hashes", "source") == ["password_history"]


def test_cost_below_the_minimum(db_url: URL) -> None:
    seed(db_url)  # every hash is m=1024,t=1,p=1, the test profile
    strong = fake_argon2id("strong", "m=19456,t=2,p=1")
    with owner(db_url) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id <> %s", (strong, U1))
        conn.execute("UPDATE password_history SET password_hash = %s WHERE user_id <> %s",
                     (strong, U1))
    assert audit(db_url, min_argon2=Argon2Minimum(1024, 1, 1)).ok
    result = audit(db_url, min_argon2=OWASP_MINIMUM)
    assert_fails_only(result, "auth.argon2id_hashes")
    check = result.get("auth.argon2id_hashes")
    # User 1's current hash and its history entry: history is held to the same minimum.
    assert check.violations == 2
    assert sorted((row["source"], row["user_id"]) for row in check.samples) == [
        ("password_history", U1), ("users", U1)]
    for row in check.samples:
        assert row["problem"] == "cost m=1024,t=1,p=1 below m=19456,t=2,p=1"
        assert row["hash_scheme"] == "$argon2id$v=19$m=1024,t=1,p=1"
    assert check.details == {"minimum": "m=19456,t=2,p=1"}


@pytest.mark.parametrize(("minimum", "ok"), [
    (Argon2Minimum(19456, 2, 1), True), (Argon2Minimum(19457, 2, 1), False),
    (Argon2Minimum(19456, 3, 1), False), (Argon2Minimum(19456, 2, 2), False)])
def test_each_cost_parameter_is_compared(db_url: URL, minimum: Argon2Minimum, ok: bool) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        for table in ("users", "password_history"):
            conn.execute(f"UPDATE {table} SET password_hash = %s",
                         (fake_argon2id(f"x-{table}", "m=19456,t=2,p=1"),))
    assert audit(db_url, only="auth", min_argon2=minimum).ok is ok


def test_repeated_password_history(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("INSERT INTO password_history (user_id, password_hash) "
                     "SELECT user_id, password_hash FROM password_history WHERE user_id = %s",
                     (U1,))
    result = audit(db_url)
    assert_fails_only(result, "auth.history_without_duplicates")
    assert result.get("auth.history_without_duplicates").samples[0]["copies"] == 2
    assert result.get("auth.history_without_duplicates").samples[0]["hash_scheme"] \
        == "$argon2id$v=19$m=1024,t=1,p=1"
    assert sampled(result, "auth.history_without_duplicates", "user_id") == [U1]


def test_live_session_older_than_the_password(db_url: URL) -> None:
    seed(db_url)  # each user: a live session 1 h old, a revoked one and an expired one
    with owner(db_url) as conn:
        conn.execute("UPDATE users SET password_changed_at = now() WHERE id = %s", (U1,))
    result = audit(db_url)
    assert_fails_only(result, "auth.no_session_before_password_change")
    check = result.get("auth.no_session_before_password_change")
    assert check.violations == 1  # the revoked and the expired sessions do not count
    assert sampled(result, "auth.no_session_before_password_change", "user_id") == [U1]


def test_temporary_password_without_expiry(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("ALTER TABLE users DROP CONSTRAINT ck_users_temp_password_expires")
        conn.execute("UPDATE users SET must_change_password = true, "
                     "temp_password_expires_at = NULL WHERE id = %s", (U1,))
    result = audit(db_url)
    assert_fails_only(result, "auth.temporary_passwords_expire")
    assert result.get("auth.temporary_passwords_expire").samples == [
        {"user_id": U1, "email": "user1@example.com"}]


def test_emails_differing_in_case(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DROP INDEX uq_users_email_lower")
        conn.execute("ALTER TABLE users DROP CONSTRAINT ck_users_email_normalised")
        conn.execute("INSERT INTO users (email, password_hash) VALUES ('User1@Example.com', %s)",
                     (fake_argon2id("dup"),))
    result = audit(db_url)
    assert_fails_only(result, "auth.emails_unique")
    [row] = result.get("auth.emails_unique").samples
    assert (row["email"], row["users"]) == ("user1@example.com", 2)
    assert U1 in row["user_ids"]


def test_reports_show_no_salt_digest_or_plain_password(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("UPDATE users SET password_hash = 'hunter2-plain-secret' WHERE id = %s",
                     (U1,))
        conn.execute("INSERT INTO password_history (user_id, password_hash) "
                     "SELECT user_id, password_hash FROM password_history")
        stored = [row[0] for row in conn.execute(
            "SELECT password_hash FROM users UNION SELECT password_hash FROM password_history")]
    result = audit(db_url, min_argon2=OWASP_MINIMUM)
    assert {"auth.argon2id_hashes", "auth.history_without_duplicates"} <= failing(result)
    report = to_json(result) + result.summary()
    assert "hunter2-plain-secret" not in report
    for phc in stored:
        for secret_part in phc.split("$")[4:]:  # the salt and the digest
            assert secret_part not in report
