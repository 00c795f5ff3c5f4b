"""Access tokens: HS256 JWTs whose `jti` names an `auth_sessions` row, checked on every use.

A token is accepted only if PyJWT accepts it (pinned algorithm, signature, `exp iat sub jti`,
issuer, audience, a few seconds of leeway) AND its session row exists, belongs to `sub`, is
neither revoked nor expired, and was created after the user's last password change. Timestamps
come from PostgreSQL's clock, so the token's `iat`/`exp` mirror the row.

Before any of that, a token longer than MAX_TOKEN_CHARS or with a character outside ASCII (the
compact serialisation is base64url and dots) is refused without decoding it, and so is one
whose segments carry base64 padding or whose header or payload is not a JSON object or names a
key twice. NumericDate claims (`exp`, `iat`, `nbf`) must be integers: a string or a float is
refused even where PyJWT would convert it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid

import jwt

from taskhub.db import Database
from taskhub.errors import ConfigurationError, InvalidToken
from taskhub.principal import Principal
from taskhub.settings import Settings
from taskhub.uow import UnitOfWork

MIN_SECRET_BYTES = 32
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "iss", "aud")
NUMERIC_DATES = ("exp", "iat", "nbf")
MAX_TOKEN_CHARS = 4096
"""Far above a real token (about 350 characters); longer input is refused before decoding."""

_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.ImmatureSignatureError, "issued in the future"),
    (jwt.DecodeError, "malformed"),
)


def _key(settings: Settings) -> str:
    if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"jwt_secret must be at least {MIN_SECRET_BYTES} bytes")
    if settings.jwt_algorithm not in HMAC_ALGORITHMS:
        raise ConfigurationError(f"jwt_algorithm must be one of {sorted(HMAC_ALGORITHMS)}")
    return settings.jwt_secret


def issue(uow: UnitOfWork, settings: Settings, user_id: uuid.UUID) -> str:
    """Open a session for `user_id` inside `uow`'s transaction and return its signed token."""
    key = _key(settings)
    row = uow.execute(
        "WITH t AS (SELECT clock_timestamp() AS now) "
        "INSERT INTO auth_sessions (user_id, created_at, expires_at) "
        "SELECT :uid, now, now + make_interval(secs => :ttl) FROM t "
        "RETURNING id, created_at, expires_at",
        {"uid": user_id, "ttl": settings.access_token_ttl_seconds},
    ).one()
    claims = {
        "sub": str(user_id), "jti": str(row.id),
        "iat": int(row.created_at.timestamp()), "exp": int(row.expires_at.timestamp()),
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)


def verify(db: Database, settings: Settings, token: str) -> Principal:
    """The principal a token proves, or InvalidToken with the reason."""
    if not isinstance(token, str):
        raise InvalidToken("malformed")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(f"longer than {MAX_TOKEN_CHARS} characters")
    if not token.isascii():
        raise InvalidToken("malformed")
    _strict_structure(token)
    try:
        claims = jwt.decode(
            token, _key(settings), algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience, issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds, options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"missing claim {exc.claim}") from None
    except jwt.InvalidTokenError as exc:
        reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "invalid")
        raise InvalidToken(reason) from None
    for name in NUMERIC_DATES:
        # PyJWT takes int("1767225600") for a string; RFC 7519 says a number, we say an integer.
        if name in claims and type(claims[name]) is not int:
            raise InvalidToken(f"{name} must be an integer NumericDate")
    try:
        user_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["jti"])
    except (ValueError, TypeError, AttributeError):
        raise InvalidToken("malformed sub or jti") from None
    # The signature proved `sub`: look the session up as that user (RLS shows no other's).
    with UnitOfWork.account(db, user_id) as uow:
        row = uow.execute(
            "SELECT s.user_id, s.revoked_at IS NOT NULL AS revoked, "
            "       s.expires_at <= clock_timestamp() AS expired, "
            "       s.created_at < u.password_changed_at AS superseded, "
            "       u.must_change_password "
            "FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = :jti",
            {"jti": session_id},
        ).one_or_none()
    if row is None or row.user_id != user_id:
        raise InvalidToken("unknown session")
    if row.revoked:
        raise InvalidToken("session revoked")
    if row.expired:
        raise InvalidToken("session expired")
    if row.superseded:
        raise InvalidToken("issued before the last password change")
    return Principal(user_id, session_id, must_change_password=row.must_change_password)


def _strict_structure(token: str) -> None:
    """Three base64url segments without padding, and a header and payload that are JSON
    objects without duplicate keys (PyJWT would pad, and let the last duplicate win: a
    reader that takes the first would see another token)."""
    segments = token.split(".")
    if len(segments) != 3 or "=" in token:
        raise InvalidToken("malformed")
    for name, segment in zip(("header", "payload"), segments[:2], strict=False):
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
            value = json.loads(raw, object_pairs_hook=_unique_keys)
        except DuplicateKey:
            raise InvalidToken(f"{name} names a key twice") from None
        except (ValueError, binascii.Error):
            raise InvalidToken("malformed") from None
        if not isinstance(value, dict):
            raise InvalidToken("malformed")


class DuplicateKey(ValueError):
    """A JSON object names one key twice."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise DuplicateKey("a key appears twice")
    return dict(pairs)


def revoke(uow: UnitOfWork, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Revoke one session of `user_id` (a no-op if it is already revoked or not theirs)."""
    uow.execute("UPDATE auth_sessions SET revoked_at = clock_timestamp() "
                "WHERE id = :sid AND user_id = :uid AND revoked_at IS NULL",
                {"sid": session_id, "uid": user_id})


def revoke_all(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Revoke every open session of `user_id`."""
    uow.execute("UPDATE auth_sessions SET revoked_at = clock_timestamp() "
                "WHERE user_id = :uid AND revoked_at IS NULL", {"uid": user_id})
