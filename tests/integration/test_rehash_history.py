"""A rehash on login leaves no cheaper hash of any password: the password's history entry is
rehashed with it and older entries hashed more cheaply go; the audit holds history to the same
minimum."""

from __future__ import annotations

import dataclasses

from sqlalchemy import URL, Engine, text

from checker.audit import Argon2Minimum, AuditOptions, run_audit
from taskhub import auth, passwords, tokens, users
from taskhub.db import Database
from taskhub.settings import Argon2Params, Settings
from tests.integration.helpers import as_owner, password

HEAVIER = Argon2Params(time_cost=2, memory_cost=2048, parallelism=1)


def _hashes(engine: Engine, user_id: object) -> tuple[str, list[str]]:
    with as_owner(engine) as conn:
        current = conn.execute(text("SELECT password_hash FROM users WHERE id = :u"),
                               {"u": user_id}).scalar_one()
        history = conn.execute(text("SELECT password_hash FROM password_history "
                                    "WHERE user_id = :u ORDER BY id"), {"u": user_id}).scalars()
        return current, list(history)


def test_a_rehash_replaces_the_history_entry_and_drops_cheaper_ones(
        db: Database, db_engine: Engine, db_url: URL, settings: Settings) -> None:
    user = users.register(db, settings, "hist@example.com", password(1))
    signed = tokens.verify(db, settings, auth.login(db, settings, user.email, password(1)))
    auth.change_password(db, settings, signed, password(1), password(2))
    current, history = _hashes(db_engine, user.id)
    assert len(history) == 2 and history[-1] == current
    heavier = dataclasses.replace(settings, argon2=HEAVIER)
    minimum = Argon2Minimum(HEAVIER.memory_cost, HEAVIER.time_cost, HEAVIER.parallelism)
    cheap = run_audit(db_url, options=AuditOptions(min_argon2=minimum))
    assert {c.name: c.violations for c in cheap.checks}["auth.argon2id_hashes"] == 3

    auth.login(db, heavier, user.email, password(2))

    rehashed, history = _hashes(db_engine, user.id)
    assert history == [rehashed] and rehashed != current
    assert not passwords.cheaper_than(rehashed, HEAVIER)
    assert passwords.verify(rehashed, password(2), heavier)
    audit = run_audit(db_url, options=AuditOptions(min_argon2=minimum))
    assert {c.name: c.violations for c in audit.checks}["auth.argon2id_hashes"] == 0


def test_stronger_older_entries_are_kept(db: Database, db_engine: Engine,
                                         settings: Settings) -> None:
    """Only cheaper entries go: a history entry made with stronger parameters than today's
    (settings were lowered) stays, and so does the reuse check it serves."""
    strong = dataclasses.replace(settings, argon2=HEAVIER)
    user = users.register(db, strong, "strong@example.com", password(1))
    signed = tokens.verify(db, strong, auth.login(db, strong, user.email, password(1)))
    auth.change_password(db, strong, signed, password(1), password(2))
    _, before = _hashes(db_engine, user.id)

    auth.login(db, settings, user.email, password(2))  # cheaper settings: a rehash down

    current, after = _hashes(db_engine, user.id)
    assert after == [before[0], current]
