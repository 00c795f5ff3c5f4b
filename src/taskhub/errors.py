"""Domain errors: the only exceptions the services raise (driver errors are mapped to these)."""

from __future__ import annotations

from collections.abc import Sequence


class TaskhubError(Exception):
    """Base of every error the data layer raises on purpose."""


class ConfigurationError(TaskhubError):
    """The settings make an operation unsafe (for example a JWT secret that is too short)."""


class StorageError(TaskhubError):
    """PostgreSQL failed in a way no service maps to a domain error.

    `sqlstate` is the server's error code when there is one (40001 and 40P01 are worth a retry);
    `during_commit` means the failure came from COMMIT, so the write may or may not have landed.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None,
                 during_commit: bool = False) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.during_commit = during_commit


class NotFound(TaskhubError):
    """The row does not exist, or is not visible to the caller (the two are not told apart)."""


class Conflict(TaskhubError):
    """The write contradicts the current state of the database."""


class EmailTaken(Conflict):
    """Another user already has this email address (compared case-insensitively)."""


class InvalidInput(TaskhubError):
    """An argument is malformed."""


class InputTooLarge(InvalidInput):
    """An argument exceeds its size limit."""


class WeakPassword(InvalidInput):
    """zxcvbn scored the password below the minimum; carries zxcvbn's feedback."""

    def __init__(self, score: int, warning: str, suggestions: Sequence[str]) -> None:
        self.score = score
        self.warning = warning
        self.suggestions = tuple(suggestions)
        advice = " ".join(part for part in (warning, *self.suggestions) if part)
        super().__init__(f"password too weak (score {score}). {advice}".strip())


class PasswordReused(InvalidInput):
    """The new password equals one of the user's recent passwords."""


class AuthError(TaskhubError):
    """Authentication or authorisation failed."""


class InvalidCredentials(AuthError):
    """Unknown email or wrong password (deliberately the same error for both)."""


class PasswordChangeRequired(AuthError):
    """The session was opened with a temporary password: only a password change is allowed."""


class TemporaryPasswordExpired(AuthError):
    """The temporary password is past its expiry or was already used once."""


class InvalidToken(AuthError):
    """The access token is not acceptable; `reason` says why (for logs, not for clients)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid token: {reason}")
        self.reason = reason


class IllegalTransition(TaskhubError):
    """The lifecycle does not allow this status change (or its result/error is missing)."""

    def __init__(self, from_status: str | None, to_status: str, reason: str = "") -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"illegal transition {from_status or '(none)'} -> {to_status}{detail}")
        self.from_status = from_status
        self.to_status = to_status


class TransitionConflict(Conflict):
    """Another transaction changed the task's status first: this transition lost the race."""
