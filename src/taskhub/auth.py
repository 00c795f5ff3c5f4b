"""Signing in and out, changing passwords, temporary passwords.

- Argon2id runs outside any transaction: `login` and `change_password` read the stored hash,
  verify (and for a change: check strength and history, hash the new password) with no lock
  held and no transaction open, then write in a short transaction that locks the user's row
  (`FOR NO KEY UPDATE`) and first checks the hash is still the one verified. If it is not (a
  password change, a reset, another login's rehash committed meanwhile) they start over, at
  most MAX_ATTEMPTS times (then Conflict). So logins to one account verify in parallel, and a
  login serialises with a password change only for its short write: either the change
  revokes the new session, or the login sees the new hash and verifies against it.
- A login that finds the hash made with other Argon2 parameters re-hashes it under the row
  lock, so parallel logins re-hash once; the others see the new hash and verify again. The
  password's history entry takes the new hash too, and older passwords' entries hashed more
  cheaply than the current parameters are dropped, so no cheaper hash of any password stays.
- A refused login takes as long whatever the account: an unknown email verifies a dummy hash
  at the current parameters, and a wrong password to an account whose hash is older and
  cheaper waits out the rest of a current verification (`passwords.pad_to_current_cost`).
- A temporary password works for one login before its expiry; that login consumes it (its
  expiry is set to the moment of use) and yields a restricted session that may only change the
  password (`UnitOfWork.tenant` refuses it with PasswordChangeRequired). That session lives
  `access_token_ttl_seconds`; if it lapses unused, an administrator issues a new one.
- Every password change (and every temporary password) sets `password_changed_at` and revokes
  all the user's sessions; token verification also rejects sessions created before it.
- No reuse of the last `password_history_depth` passwords: the history holds the passwords the
  user chose, newest first, current included; rows beyond that depth are deleted.
"""

from __future__ import annotations

import secrets
import time
import uuid

from taskhub import inputs, passwords, tokens
from taskhub.db import Database
from taskhub.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    PasswordReused,
    TemporaryPasswordExpired,
)
from taskhub.principal import Principal
from taskhub.settings import Settings
from taskhub.uow import UnitOfWork
from taskhub.users import normalise_email

TEMP_PASSWORD_BYTES = 18  # 144 random bits, 24 URL-safe characters
MAX_ATTEMPTS = 3
"""How often login and change_password start over when the hash changed under them."""


def login(db: Database, settings: Settings, email: str, password: str) -> str:
    """A signed access token; InvalidCredentials for an unknown email or a wrong password."""
    passwords.normalise(password, settings)  # InputTooLarge before any work
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = ""  # matches no user: takes the dummy-hash path below
    for _ in range(MAX_ATTEMPTS):
        with UnitOfWork.anonymous(db) as uow:
            user = uow.lookup_login(email)  # uq_users_email_lower
        if user is None:
            passwords.verify_dummy(password, settings)
            raise InvalidCredentials("unknown email or wrong password")
        started = time.perf_counter()
        if not passwords.verify(user.password_hash, password, settings):
            if not passwords.costs_current(user.password_hash, settings.argon2):
                passwords.pad_to_current_cost(started, settings)  # an older, cheaper hash
            raise InvalidCredentials("unknown email or wrong password")
        token = _open_session(db, settings, user.id, user.password_hash, password)
        if token is not None:
            return token
    raise Conflict("the password kept changing during sign-in; try again")


def _open_session(db: Database, settings: Settings, user_id: uuid.UUID, verified_hash: str,
                  password: str) -> str | None:
    """The session of a verified login, or None when the hash changed since it was read."""
    with UnitOfWork.account(db, user_id) as uow:
        user = uow.execute(
            "SELECT password_hash, must_change_password, "
            "       temp_password_expires_at <= clock_timestamp() AS temp_expired "
            "FROM users WHERE id = :uid FOR NO KEY UPDATE", {"uid": user_id}).one_or_none()
        if user is None:  # deleted meanwhile
            raise InvalidCredentials("unknown email or wrong password")
        if user.password_hash != verified_hash:
            return None
        if user.must_change_password:
            if user.temp_expired:
                raise TemporaryPasswordExpired("the temporary password has expired or was used")
            uow.execute("UPDATE users SET temp_password_expires_at = clock_timestamp() "
                        "WHERE id = :uid", {"uid": user_id})
        elif passwords.needs_rehash(verified_hash, settings):
            fresh = passwords.hash_password(password, settings)
            uow.execute("UPDATE users SET password_hash = :hash WHERE id = :uid",
                        {"hash": fresh, "uid": user_id})
            _rehash_history(uow, user_id, verified_hash, fresh, settings)
        token = tokens.issue(uow, settings, user_id)
        uow.commit()
    return token


def logout(db: Database, principal: Principal) -> None:
    """Revoke the principal's session (allowed for restricted sessions too)."""
    with UnitOfWork.account(db, principal.user_id) as uow:
        tokens.revoke(uow, principal.user_id, principal.session_id)
        uow.commit()


def change_password(db: Database, settings: Settings, principal: Principal,
                    old_password: str, new_password: str) -> None:
    """Replace the password after checking the old one, strength and history; ends all sessions.

    The caller signs in again with the new password afterwards.
    """
    passwords.normalise(new_password, settings)
    for _ in range(MAX_ATTEMPTS):
        with UnitOfWork.account(db, principal.user_id) as uow:
            user = uow.execute("SELECT email, password_hash FROM users WHERE id = :uid",
                               {"uid": principal.user_id}).one_or_none()
            recent = uow.execute(
                "SELECT password_hash FROM password_history WHERE user_id = :uid "
                "ORDER BY id DESC LIMIT :depth",
                {"uid": principal.user_id, "depth": settings.password_history_depth},
            ).scalars().all()
        if user is None:
            raise NotFound("user not found")
        if not passwords.verify(user.password_hash, old_password, settings):
            raise InvalidCredentials("the current password is wrong")
        passwords.check_strength(new_password, user.email, settings)
        if passwords.matches_any(new_password, [user.password_hash, *recent], settings):
            raise PasswordReused("choose a password not among your last "
                                 f"{settings.password_history_depth}")
        new_hash = passwords.hash_password(new_password, settings)
        if _replace_password(db, settings, principal.user_id, user.password_hash, new_hash):
            return
    raise Conflict("the password kept changing during this change; try again")


def _replace_password(db: Database, settings: Settings, user_id: uuid.UUID,
                      verified_hash: str, new_hash: str) -> bool:
    """Store the new hash, its history entry and revoke every session, unless the stored hash
    is no longer the one verified (False). The history only changes along with the hash, so
    an unchanged hash also means the reuse check saw the current history."""
    with UnitOfWork.account(db, user_id) as uow:
        current = uow.execute("SELECT password_hash FROM users WHERE id = :uid "
                              "FOR NO KEY UPDATE", {"uid": user_id}).scalar_one_or_none()
        if current is None:
            raise NotFound("user not found")
        if current != verified_hash:
            return False
        uow.execute(
            "UPDATE users SET password_hash = :hash, must_change_password = false, "
            "temp_password_expires_at = NULL, password_changed_at = clock_timestamp(), "
            "updated_at = now() WHERE id = :uid", {"hash": new_hash, "uid": user_id})
        _record_history(uow, user_id, new_hash, settings.password_history_depth)
        tokens.revoke_all(uow, user_id)
        uow.commit()
    return True


def issue_temporary_password(db: Database, settings: Settings,
                             user_id: uuid.UUID | str) -> str:
    """An administrator's reset: a random password, returned once; ends all sessions.

    Authorising the administrator is the caller's job; the data layer has no admin role.
    """
    user_id = inputs.uuid_of(user_id, "user id")
    temporary = secrets.token_urlsafe(TEMP_PASSWORD_BYTES)
    temporary_hash = passwords.hash_password(temporary, settings)  # before the transaction
    with UnitOfWork.account(db, user_id) as uow:
        updated = uow.execute(
            "UPDATE users SET password_hash = :hash, must_change_password = true, "
            "temp_password_expires_at = clock_timestamp() + make_interval(secs => :ttl), "
            "password_changed_at = clock_timestamp(), updated_at = now() WHERE id = :uid",
            {"hash": temporary_hash, "ttl": settings.temp_password_ttl_seconds, "uid": user_id},
        ).rowcount
        if updated == 0:
            raise NotFound("user not found")
        tokens.revoke_all(uow, user_id)
        uow.commit()
    return temporary


def _rehash_history(uow: UnitOfWork, user_id: uuid.UUID, old_hash: str, fresh: str,
                    settings: Settings) -> None:
    """The rehashed password's history entry takes the new hash, and entries of older
    passwords hashed cheaper than the current parameters go: no cheaper hash of any of the
    user's passwords is kept (reuse of those older passwords is then not detected, which
    costs less than keeping hashes that are cheaper to crack)."""
    uow.execute("UPDATE password_history SET password_hash = :fresh "
                "WHERE user_id = :uid AND password_hash = :old",
                {"fresh": fresh, "uid": user_id, "old": old_hash})
    entries = uow.execute("SELECT id, password_hash FROM password_history WHERE user_id = :uid",
                          {"uid": user_id}).all()
    cheaper = [e.id for e in entries if passwords.cheaper_than(e.password_hash, settings.argon2)]
    if cheaper:
        uow.execute("DELETE FROM password_history WHERE id = ANY(:ids)", {"ids": cheaper})


def _record_history(uow: UnitOfWork, user_id: uuid.UUID, password_hash: str, depth: int) -> None:
    uow.execute("INSERT INTO password_history (user_id, password_hash) VALUES (:uid, :hash)",
                {"uid": user_id, "hash": password_hash})
    uow.execute(
        "DELETE FROM password_history WHERE user_id = :uid AND id NOT IN ("
        "  SELECT id FROM password_history WHERE user_id = :uid ORDER BY id DESC LIMIT :depth)",
        {"uid": user_id, "depth": depth})
