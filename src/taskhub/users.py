"""Users: register, read, change email, delete (sign-in and passwords live in `auth`).

Emails are stored normalised (NFKC, stripped, lower-case), so the unique index on
`lower(email)` makes them unique case-insensitively; the unique index on `email_skeleton` (UTS
#39, `taskhub.confusables`) makes addresses that only look alike one address. Registration
records the first password in `password_history` too: the history holds every password the user
chose, the current one included (temporary passwords are not choices and are not recorded).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from taskhub import inputs, passwords
from taskhub.confusables import skeleton
from taskhub.db import Database
from taskhub.errors import EmailTaken, InputTooLarge, InvalidInput, NotFound
from taskhub.principal import Principal
from taskhub.settings import Settings
from taskhub.uow import UnitOfWork, sqlstate_of

MAX_EMAIL_CHARS = 254
UNIQUE_VIOLATION = "23505"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_COLUMNS = ("id, email, must_change_password, temp_password_expires_at, password_changed_at, "
            "created_at, updated_at")


@dataclass(frozen=True)
class UserRecord:
    """A user as the services return it (never with the password hash)."""

    id: uuid.UUID
    email: str
    must_change_password: bool
    temp_password_expires_at: datetime | None
    password_changed_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> UserRecord:
        """Build from a row holding the user columns."""
        return cls(**row._asdict())


def normalise_email(email: str) -> str:
    """NFKC, stripped, lower-case; InvalidInput unless it looks like `local@domain` (and holds
    no control character or lone surrogate)."""
    if isinstance(email, str) and len(email) > 4 * MAX_EMAIL_CHARS:
        raise InputTooLarge(f"email longer than {MAX_EMAIL_CHARS} characters")
    normal = unicodedata.normalize("NFKC", inputs.text(email, "email")).strip().lower()
    if len(normal) > MAX_EMAIL_CHARS:
        raise InputTooLarge(f"email longer than {MAX_EMAIL_CHARS} characters")
    if not _EMAIL.fullmatch(normal) or any(unicodedata.category(c) == "Cc" for c in normal):
        raise InvalidInput("email must look like local@domain")
    return normal


def register(db: Database, settings: Settings, email: str, password: str) -> UserRecord:
    """Create a user; EmailTaken if the address exists in any case or only looks like one
    that does (the same UTS #39 skeleton), WeakPassword if weak."""
    email = normalise_email(email)
    passwords.check_strength(password, email, settings)
    password_hash = passwords.hash_password(password, settings)
    # The new account is its own tenant from its first row on: its id is chosen here, so
    # the insert runs with that tenant entered, and row-level security admits nothing else.
    user_id = uuid.uuid4()
    with UnitOfWork.account(db, user_id) as uow:
        try:
            row = uow.execute(
                "INSERT INTO users (id, email, email_skeleton, password_hash) "
                f"VALUES (:uid, :email, :skeleton, :hash) RETURNING {_COLUMNS}",
                {"uid": user_id, "email": email, "skeleton": skeleton(email),
                 "hash": password_hash}).one()
        except IntegrityError as exc:
            if sqlstate_of(exc) == UNIQUE_VIOLATION:
                raise EmailTaken(f"{email} is already registered") from None
            raise
        uow.execute("INSERT INTO password_history (user_id, password_hash) VALUES (:uid, :hash)",
                    {"uid": row.id, "hash": password_hash})
        uow.commit()
    return UserRecord.from_row(row)


def get(db: Database, principal: Principal) -> UserRecord:
    """The signed-in user's own record."""
    with UnitOfWork.tenant(db, principal) as uow:
        row = uow.execute(f"SELECT {_COLUMNS} FROM users WHERE id = :uid",
                          {"uid": principal.user_id}).one_or_none()
    if row is None:
        raise NotFound("user not found")
    return UserRecord.from_row(row)


def update_email(db: Database, principal: Principal, new_email: str) -> UserRecord:
    """Change the signed-in user's email; EmailTaken if another user has it (or one that
    looks like it)."""
    email = normalise_email(new_email)
    with UnitOfWork.tenant(db, principal) as uow:
        try:
            row = uow.execute(
                "UPDATE users SET email = :email, email_skeleton = :skeleton, updated_at = now() "
                f"WHERE id = :uid RETURNING {_COLUMNS}",
                {"email": email, "skeleton": skeleton(email), "uid": principal.user_id},
            ).one_or_none()
        except IntegrityError as exc:
            if sqlstate_of(exc) == UNIQUE_VIOLATION:
                raise EmailTaken(f"{email} is already registered") from None
            raise
        if row is None:
            raise NotFound("user not found")
        uow.commit()
    return UserRecord.from_row(row)


def delete(db: Database, principal: Principal) -> None:
    """Delete the signed-in user; foreign keys cascade to tasks, events, sessions, history."""
    with UnitOfWork.tenant(db, principal) as uow:
        if uow.execute("DELETE FROM users WHERE id = :uid",
                       {"uid": principal.user_id}).rowcount == 0:
            raise NotFound("user not found")
        uow.commit()
