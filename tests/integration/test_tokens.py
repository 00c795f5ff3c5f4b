"""Access tokens: PyJWT's checks, then the session row in PostgreSQL, on every verification."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import Engine, text

from taskhub import auth, tokens
from taskhub.db import Database
from taskhub.errors import ConfigurationError, InvalidToken
from taskhub.settings import Settings
from tests.integration.forge import hs256, rsa_key
from tests.integration.helpers import Account, as_owner, password
from tests.integration.spies import statements


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def reissue(token: str, settings: Settings, *, drop: str | None = None,
            key: str | None = None, algorithm: str = "HS256", **changes: Any) -> str:
    """The same claims (minus `drop`, plus `changes`) signed again, by default with the
    application's own secret: only the named defect differs from a valid token."""
    claims = {**claims_of(token), **changes}
    claims.pop(drop or "", None)
    return jwt.encode(claims, key or settings.jwt_secret, algorithm=algorithm)


def reason(db: Database, settings: Settings, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        tokens.verify(db, settings, token)
    return caught.value.reason


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()


def test_valid_token(db: Database, db_engine: Engine, settings: Settings, account: Account) -> None:
    principal = tokens.verify(db, settings, account.token)
    assert principal.user_id == account.user.id
    assert not principal.must_change_password
    claims = claims_of(account.token)
    assert jwt.get_unverified_header(account.token)["alg"] == "HS256"
    assert claims["sub"] == str(account.user.id)
    assert claims["jti"] == str(principal.session_id)
    assert (claims["iss"], claims["aud"]) == (settings.jwt_issuer, settings.jwt_audience)
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    with as_owner(db_engine) as conn:
        owner = conn.execute(text("SELECT user_id FROM auth_sessions WHERE id = :j"),
                             {"j": claims["jti"]}).scalar_one()
    assert owner == account.user.id


def test_resigned_token_still_valid(db: Database, settings: Settings,
                                    account: Account) -> None:
    """Guards the helper below: re-signing alone does not make a token invalid."""
    tokens.verify(db, settings, reissue(account.token, settings))


def test_expired(db: Database, settings: Settings, account: Account) -> None:
    past = int(time.time()) - 3600
    expired = reissue(account.token, settings, iat=past - 60, exp=past)
    assert reason(db, settings, expired) == "expired"


def test_leeway_is_small(db: Database,
                         db_engine: Engine, settings: Settings, account: Account) -> None:
    now = int(time.time())
    just_expired = reissue(account.token, settings, exp=now - 2)  # within 5 s of leeway
    tokens.verify(db, settings, just_expired)
    assert reason(db, settings, reissue(account.token, settings, exp=now - 30)) \
        == "expired"


def test_bad_signature(db: Database, settings: Settings, account: Account) -> None:
    forged = reissue(account.token, settings, key="another-secret-of-at-least-32-bytes!!")
    assert reason(db, settings, forged) == "bad signature"
    header, payload, signature = account.token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert reason(db, settings, f"{header}.{payload}.{flipped}") == "bad signature"


def test_alg_none(db: Database, settings: Settings, account: Account) -> None:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims_of(account.token))}."
    assert reason(db, settings, unsigned) == "algorithm not allowed"


def test_other_algorithm_with_the_same_key(db: Database, settings: Settings,
                                           account: Account) -> None:
    hs512 = reissue(account.token, settings, algorithm="HS512")
    assert reason(db, settings, hs512) == "algorithm not allowed"


def test_wrong_audience(db: Database, settings: Settings, account: Account) -> None:
    wrong = reissue(account.token, settings, aud="some-other-api")
    assert reason(db, settings, wrong) == "wrong audience"


def test_wrong_issuer(db: Database, settings: Settings, account: Account) -> None:
    wrong = reissue(account.token, settings, iss="someone-else")
    assert reason(db, settings, wrong) == "wrong issuer"


@pytest.mark.parametrize("claim", tokens.REQUIRED_CLAIMS)
def test_missing_claim(db: Database, settings: Settings, account: Account,
                       claim: str) -> None:
    assert reason(db, settings, reissue(account.token, settings, drop=claim)) \
        == f"missing claim {claim}"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..."])
def test_malformed(db: Database, settings: Settings, garbage: str) -> None:
    assert reason(db, settings, garbage) == "malformed"


def test_non_uuid_subject(db: Database, settings: Settings, account: Account) -> None:
    assert reason(db, settings, reissue(account.token, settings, sub="admin")) \
        == "malformed sub or jti"


def test_session_of_another_user(db: Database, settings: Settings,
                                 make_account: Callable[..., Account]) -> None:
    alice, bob = make_account(), make_account()
    stolen = reissue(alice.token, settings, sub=str(bob.user.id))
    assert reason(db, settings, stolen) == "unknown session"


def test_unknown_session(db: Database, settings: Settings, account: Account) -> None:
    assert reason(db, settings, reissue(account.token, settings, jti=str(uuid.uuid4()))) \
        == "unknown session"


def test_revoked_by_logout(db: Database, db_engine: Engine, settings: Settings,
                           make_account: Callable[..., Account]) -> None:
    account = make_account()
    second = auth.login(db, settings, account.user.email, account.password)
    auth.logout(db, account.principal)
    assert reason(db, settings, account.token) == "session revoked"
    tokens.verify(db, settings, second)  # logout ends only its own session


def test_session_read_back_from_postgresql(db: Database, db_engine: Engine, settings: Settings,
                                           account: Account) -> None:
    """Changes made behind the application's back take effect at the next verification."""
    jti = claims_of(account.token)["jti"]
    with as_owner(db_engine) as conn:
        conn.execute(text("UPDATE auth_sessions SET revoked_at = now() WHERE id = :j"),
                     {"j": jti})
    assert reason(db, settings, account.token) == "session revoked"
    with as_owner(db_engine) as conn:
        conn.execute(text("UPDATE auth_sessions SET revoked_at = NULL WHERE id = :j"),
                     {"j": jti})
    tokens.verify(db, settings, account.token)
    with as_owner(db_engine) as conn:
        conn.execute(text("UPDATE auth_sessions SET created_at = now() - interval '2 hours', "
                          "expires_at = now() - interval '1 hour' WHERE id = :j"), {"j": jti})
    assert reason(db, settings, account.token) == "session expired"
    with as_owner(db_engine) as conn:
        conn.execute(text("DELETE FROM auth_sessions WHERE id = :j"), {"j": jti})
    assert reason(db, settings, account.token) == "unknown session"


@pytest.mark.checker_no_audit  # un-revokes sessions behind the services' back on purpose
def test_tokens_issued_before_a_password_change(db: Database, db_engine: Engine, settings: Settings,
                                                 account: Account) -> None:
    second = auth.login(db, settings, account.user.email, account.password)
    auth.change_password(db, settings, account.principal, account.password, password(99))
    for old in (account.token, second):
        assert reason(db, settings, old) == "session revoked"
    # Even if the revocation were lost, the session predates the password change.
    with as_owner(db_engine) as conn:
        conn.execute(text("UPDATE auth_sessions SET revoked_at = NULL"))
    for old in (account.token, second):
        assert reason(db, settings, old) == "issued before the last password change"
    fresh = auth.login(db, settings, account.user.email, password(99))
    assert tokens.verify(db, settings, fresh).user_id == account.user.id


@pytest.mark.parametrize("secret", ["", "x" * 31])
def test_short_secret_refused(db: Database, db_engine: Engine, settings: Settings, account: Account,
                              secret: str) -> None:
    weak = dataclasses.replace(settings, jwt_secret=secret)
    with pytest.raises(ConfigurationError, match="32 bytes"):
        auth.login(db, weak, account.user.email, account.password)
    with pytest.raises(ConfigurationError):
        tokens.verify(db, weak, account.token)
    with as_owner(db_engine) as conn:  # the refused login left no session behind
        assert conn.execute(text("SELECT count(*) FROM auth_sessions")).scalar_one() == 1


def test_not_yet_valid(db: Database,
                       db_engine: Engine, settings: Settings, account: Account) -> None:
    later = int(time.time()) + 3600
    for claims in ({"nbf": later}, {"iat": later}, {"iat": later, "nbf": later}):
        assert reason(db, settings, reissue(account.token, settings, **claims)) \
            == "issued in the future"
    soon = int(time.time()) + 2  # within the leeway: clock skew, accepted
    tokens.verify(db, settings, reissue(account.token, settings, nbf=soon))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "", "HS256 "])
def test_alg_none_spellings(db: Database, settings: Settings, account: Account,
                            alg: str) -> None:
    for signature in ("", "AAAA"):
        unsigned = hs256(claims_of(account.token), settings.jwt_secret, {"alg": alg})
        forged = f"{unsigned.rpartition('.')[0]}.{signature}"
        assert reason(db, settings, forged) == "algorithm not allowed"


def test_no_alg_header(db: Database, settings: Settings, account: Account) -> None:
    token = hs256(claims_of(account.token), settings.jwt_secret, {"typ": "JWT"})
    assert reason(db, settings, token) == "algorithm not allowed"


def test_rs256_token_refused_because_the_algorithm_is_pinned(
        db: Database, settings: Settings, account: Account) -> None:
    key = rsa_key()
    token = key.rs256(claims_of(account.token))
    assert key.verifies(token)  # a genuine RS256 signature over the real claims
    assert reason(db, settings, token) == "algorithm not allowed"


def test_hs256_with_a_public_key_as_the_secret(db: Database, settings: Settings,
                                               account: Account) -> None:
    """The classic key confusion: HMAC keyed with public material. Only the configured
    secret signs, so it is a bad signature, whatever the public key."""
    pem = rsa_key().public_pem()
    for secret in (pem, pem.encode(), pem.strip()):
        token = hs256(claims_of(account.token), secret)
        assert reason(db, settings, token) == "bad signature"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "none", "PS256"])
def test_public_key_or_no_algorithm_cannot_be_configured(db: Database,
        settings: Settings, account: Account, algorithm: str) -> None:
    mixed = dataclasses.replace(settings, jwt_algorithm=algorithm)
    with pytest.raises(ConfigurationError, match="jwt_algorithm"):
        tokens.verify(db, mixed, account.token)
    with pytest.raises(ConfigurationError, match="jwt_algorithm"):
        auth.login(db, mixed, account.user.email, account.password)


@pytest.mark.parametrize(("claims", "expected"), [
    ({"jti": "not-a-uuid"}, "malformed sub or jti"),
    ({"sub": 12345}, "invalid"),
    ({"jti": ["x"]}, "invalid"),
    ({"exp": "tomorrow"}, "malformed"),
    ({"iat": "yesterday"}, "invalid"),
    ({"aud": ["someone-else"]}, "wrong audience"),
    ({"iss": ["taskhub"]}, "wrong issuer"),
])
def test_claims_of_the_wrong_type(db: Database, settings: Settings, account: Account,
                                  claims: dict[str, Any], expected: str) -> None:
    token = hs256({**claims_of(account.token), **claims}, settings.jwt_secret)
    assert reason(db, settings, token) == expected


@pytest.mark.parametrize(("garbage", "expected"), [
    ("a" * 1_000_000, f"longer than {tokens.MAX_TOKEN_CHARS} characters"),
    ("x.y.z" * 200_000, f"longer than {tokens.MAX_TOKEN_CHARS} characters"),
    ("\u00e9.a.b", "malformed"),
    ("\ud800.a.b", "malformed"),
    ("a\x00.b.c", "malformed"),
])
def test_oversized_or_non_ascii_refused_without_database_work(
        db: Database, settings: Settings, account: Account, garbage: str,
        expected: str) -> None:
    with statements(db) as sent:
        assert reason(db, settings, garbage) == expected
        oversized = account.token + "A" * tokens.MAX_TOKEN_CHARS  # a real token, padded
        assert reason(db, settings, oversized).startswith("longer than")
    assert sent == []
