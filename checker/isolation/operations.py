"""Which anomaly each taskhub operation is exposed to, and what makes it safe anyway.

Every taskhub service runs at PostgreSQL's default, READ COMMITTED, where the matrix shows P4,
G-single, G2-item and G2 can occur. The services do not rely on a snapshot spanning several
statements; each race they take part in is closed by something that works at read committed:
a conditional write (its WHERE is re-checked on the newest row version after a lock wait), a
row lock taken before the decisive read (or before checking that what was read without it is
unchanged), `SKIP LOCKED`, a unique index or a foreign key check (both wait for the
conflicting transaction, then decide). So no service needs repeatable read or serializable,
and none needs a 40001 retry loop. `OPERATIONS` lists each case with the test
that forces its interleaving on real connections; `render_markdown()` makes it a table.
"""

from __future__ import annotations

from dataclasses import dataclass

_OPS_TESTS = "tests/integration/test_isolation_operations.py"
_CONCURRENCY_TESTS = "tests/integration/test_concurrency.py"


@dataclass(frozen=True)
class OperationSafety:
    """One race a taskhub operation takes part in, the anomaly it risks, and its safeguard."""

    operation: str
    race: str
    anomaly: str
    safeguard: str
    loser_sees: str
    proof: str
    """`path::test` that forces the interleaving."""


OPERATIONS: tuple[OperationSafety, ...] = (
    OperationSafety(
        "tasks.start / complete / fail", "a worker moves a task another worker has already "
        "moved and committed", "P4", "one statement reads the status and writes "
        "`UPDATE ... WHERE id = :id AND status = :from`: its snapshot already shows the new "
        "status, so nothing is written", "IllegalTransition (the status it found)",
        f"{_OPS_TESTS}::test_transition_after_the_winner_committed_is_illegal"),
    OperationSafety(
        "tasks.start / complete / fail", "two workers move the same task at once (the first "
        "has written, not committed)", "P4",
        "the same statement: its snapshot still shows the old status, its UPDATE waits for "
        "the first's row lock, re-checks its WHERE on the committed row and matches nothing",
        "TransitionConflict", f"{_OPS_TESTS}::test_transition_waits_then_finds_the_status_moved"),
    OperationSafety(
        "tasks.update vs a transition", "a tenant edits title/payload while a worker moves "
        "the task", "P4 (whole-row read-modify-write)",
        "disjoint columns: each UPDATE sets only its own columns from its parameters, never "
        "from values it read; the row lock orders them", "nothing lost: both changes kept",
        f"{_OPS_TESTS}::test_edit_and_transition_keep_both_changes"),
    OperationSafety(
        "tasks.claim", "two workers claim from the queue at once", "P4 (double claim)",
        "`FOR UPDATE SKIP LOCKED` takes only unlocked rows and `AND status = 'pending'` "
        "re-checks them; a claim never waits for another", "other tasks (disjoint claims)",
        f"{_OPS_TESTS}::test_claim_skips_the_rows_another_claim_holds"),
    OperationSafety(
        "auth.login vs change_password", "a login with the old password while it is "
        "changed", "G-single (read skew)",
        "Argon2id runs outside any transaction; the write then locks the user's row (`FOR NO "
        "KEY UPDATE`) and checks the hash is still the one verified: the login waits, finds "
        "the new hash and verifies again, or the change waits and revokes the login's session",
        "InvalidCredentials, or a revoked session",
        f"{_OPS_TESTS}::test_login_queued_behind_a_password_change_fails"),
    OperationSafety(
        "change_password vs auth.login", "the change arrives while a login holds the row",
        "G-single (read skew)", "same row lock and hash check; `revoke_all` runs after the "
        "login committed",
        "the new session is revoked",
        f"{_OPS_TESTS}::test_password_change_queued_behind_a_login_revokes_its_session"),
    OperationSafety(
        "auth.change_password vs itself", "two changes from the same old password",
        "G2-item (write skew)", "user row lock and hash check: the second finds the first's "
        "new hash and verifies the old password again",
        "InvalidCredentials (the old password no longer matches)",
        f"{_OPS_TESTS}::test_second_password_change_checks_the_first_ones_password"),
    OperationSafety(
        "auth.login (rehash)", "parallel logins to an account hashed with old parameters",
        "P4", "the first login to lock the row re-hashes under the lock; the others find "
        "the new hash and verify again",
        "nothing: every login succeeds, one rehash",
        f"{_CONCURRENCY_TESTS}::test_parallel_logins_open_distinct_sessions_and_rehash_once"),
    OperationSafety(
        "users.register / update_email", "one email registered concurrently, in any case",
        "G2 (write skew on the predicate 'nobody has this email')",
        "unique index on lower(email): the second insert waits for the first transaction, "
        "then fails with 23505", "EmailTaken",
        f"{_CONCURRENCY_TESTS}::test_one_email_registered_concurrently_in_different_cases"),
    OperationSafety(
        "tasks.create vs users.delete", "a task created while its user is deleted",
        "G2 (insert under a predicate another transaction falsifies)",
        "the foreign key check locks the user row (KEY SHARE): the create waits and fails "
        "(23503), or the delete waits and cascades the new task", "NotFound",
        f"{_OPS_TESTS}::test_create_queued_behind_a_user_delete_is_not_found"),
    OperationSafety(
        "users.delete vs tasks.create", "the delete arrives while a create holds the key lock",
        "G2", "same lock; the cascade runs after the create committed and takes its task",
        "nothing: no orphan",
        f"{_OPS_TESTS}::test_user_delete_queued_behind_a_create_takes_the_new_task"),
    OperationSafety(
        "tokens.verify vs change_password / logout", "a token checked while its session is "
        "being revoked", "G-single (session row vs the user's password_changed_at)",
        "one statement reads the session and its user (one snapshot at read committed); it "
        "takes no lock, so it sees the last committed state: a revocation counts from its "
        "COMMIT on", "before that COMMIT the token still passes; after it, InvalidToken",
        f"{_OPS_TESTS}::test_verify_sees_the_committed_state_without_waiting"),
    OperationSafety(
        "transitions vs users.delete / tasks.delete", "a worker moves a task being deleted",
        "lost delete (a write to a vanished row)",
        "the delete holds the row lock; the conditional write waits, matches nothing, and a "
        "fresh read tells deleted from moved", "NotFound",
        f"{_OPS_TESTS}::test_transition_queued_behind_a_user_delete_is_not_found"),
)


def render_markdown() -> str:
    """The table of `OPERATIONS` in Markdown."""
    lines = ["| operation | race | anomaly at read committed | safeguard | the loser sees | "
             "proof |", "|---|---|---|---|---|---|"]
    lines += [f"| {o.operation} | {o.race} | {o.anomaly} | {o.safeguard} | {o.loser_sees} | "
              f"`{o.proof.split('::')[1]}` |" for o in OPERATIONS]
    return "\n".join(lines) + "\n"
