"""Signing in and out, changing passwords, temporary passwords.

- `login` locks the user's row (`FOR NO KEY UPDATE`) while it checks the password and opens
  the session, so it serialises with a concurrent password change: either the change sees (and
  revokes) the new session, or the login sees the new password.
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
import uuid

from sqlalchemy import Engine

from taskhub import inputs, passwords, tokens
from taskhub.errors import (
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


def login(engine: Engine, settings: Settings, email: str, password: str) -> str:
    """A signed access token; InvalidCredentials for an unknown email or a wrong password."""
    passwords.normalise(password, settings)  # InputTooLarge before any work
    try:
        email = normalise_email(email)
    except InvalidInput:
        email = ""  # matches no user: takes the dummy-hash path below
    with UnitOfWork.anonymous(engine) as uow:
        user = uow.execute(
            "SELECT id, password_hash, must_change_password, "
            "       temp_password_expires_at <= clock_timestamp() AS temp_expired "
            "FROM users WHERE lower(email) = :email FOR NO KEY UPDATE",  # uq_users_email_lower
            {"email": email},
        ).one_or_none()
        if user is None:
            passwords.verify_dummy(password, settings)
            raise InvalidCredentials("unknown email or wrong password")
        if not passwords.verify(user.password_hash, password, settings):
            raise InvalidCredentials("unknown email or wrong password")
        if user.must_change_password:
            if user.temp_expired:
                raise TemporaryPasswordExpired("the temporary password has expired or was used")
            uow.execute("UPDATE users SET temp_password_expires_at = clock_timestamp() "
                        "WHERE id = :uid", {"uid": user.id})
        elif passwords.needs_rehash(user.password_hash, settings):
            uow.execute("UPDATE users SET password_hash = :hash WHERE id = :uid",
                        {"hash": passwords.hash_password(password, settings), "uid": user.id})
        token = tokens.issue(uow, settings, user.id)
        uow.commit()
    return token


def logout(engine: Engine, principal: Principal) -> None:
    """Revoke the principal's session (allowed for restricted sessions too)."""
    with UnitOfWork.account(engine, principal.user_id) as uow:
        tokens.revoke(uow, principal.user_id, principal.session_id)
        uow.commit()


def change_password(engine: Engine, settings: Settings, principal: Principal,
                    old_password: str, new_password: str) -> None:
    """Replace the password after checking the old one, strength and history; ends all sessions.

    The caller signs in again with the new password afterwards.
    """
    passwords.normalise(new_password, settings)
    with UnitOfWork.account(engine, principal.user_id) as uow:
        user = uow.execute("SELECT email, password_hash FROM users WHERE id = :uid "
                           "FOR NO KEY UPDATE", {"uid": principal.user_id}).one_or_none()
        if user is None:
            raise NotFound("user not found")
        if not passwords.verify(user.password_hash, old_password, settings):
            raise InvalidCredentials("the current password is wrong")
        passwords.check_strength(new_password, user.email, settings)
        recent = uow.execute(
            "SELECT password_hash FROM password_history WHERE user_id = :uid "
            "ORDER BY id DESC LIMIT :depth",
            {"uid": principal.user_id, "depth": settings.password_history_depth},
        ).scalars().all()
        if passwords.matches_any(new_password, [user.password_hash, *recent], settings):
            raise PasswordReused("choose a password not among your last "
                                 f"{settings.password_history_depth}")
        new_hash = passwords.hash_password(new_password, settings)
        uow.execute(
            "UPDATE users SET password_hash = :hash, must_change_password = false, "
            "temp_password_expires_at = NULL, password_changed_at = clock_timestamp(), "
            "updated_at = now() WHERE id = :uid", {"hash": new_hash, "uid": principal.user_id})
        _record_history(uow, principal.user_id, new_hash, settings.password_history_depth)
        tokens.revoke_all(uow, principal.user_id)
        uow.commit()


def issue_temporary_password(engine: Engine, settings: Settings,
                             user_id: uuid.UUID | str) -> str:
    """An administrator's reset: a random password, returned once; ends all sessions.

    Authorising the administrator is the caller's job; the data layer has no admin role.
    """
    user_id = inputs.uuid_of(user_id, "user id")
    temporary = secrets.token_urlsafe(TEMP_PASSWORD_BYTES)
    with UnitOfWork.account(engine, user_id) as uow:
        updated = uow.execute(
            "UPDATE users SET password_hash = :hash, must_change_password = true, "
            "temp_password_expires_at = clock_timestamp() + make_interval(secs => :ttl), "
            "password_changed_at = clock_timestamp(), updated_at = now() WHERE id = :uid",
            {"hash": passwords.hash_password(temporary, settings),
             "ttl": settings.temp_password_ttl_seconds, "uid": user_id},
        ).rowcount
        if updated == 0:
            raise NotFound("user not found")
        tokens.revoke_all(uow, user_id)
        uow.commit()
    return temporary


def _record_history(uow: UnitOfWork, user_id: uuid.UUID, password_hash: str, depth: int) -> None:
    uow.execute("INSERT INTO password_history (user_id, password_hash) VALUES (:uid, :hash)",
                {"uid": user_id, "hash": password_hash})
    uow.execute(
        "DELETE FROM password_history WHERE user_id = :uid AND id NOT IN ("
        "  SELECT id FROM password_history WHERE user_id = :uid ORDER BY id DESC LIMIT :depth)",
        {"uid": user_id, "depth": depth})
