"""Tokens PyJWT alone would accept but a strict reader refuses: NumericDates that are not
integers, base64 padding, duplicate keys in the header or the payload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from taskhub import tokens
from taskhub.db import Database
from taskhub.errors import InvalidToken
from taskhub.settings import Settings
from tests.integration.helpers import Account


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(header: bytes, payload: bytes, settings: Settings, *, pad: bool = False) -> str:
    """A token with exactly these header and payload bytes, correctly signed."""
    encode = (lambda raw: base64.urlsafe_b64encode(raw).decode()) if pad else _b64
    head = f"{encode(header)}.{encode(payload)}"
    mac = hmac.new(settings.jwt_secret.encode(), head.encode(), hashlib.sha256).digest()
    return f"{head}.{encode(mac)}"


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account()


def claims_of(account: Account) -> dict[str, Any]:
    return jwt.decode(account.token, options={"verify_signature": False})


HEADER = b'{"alg":"HS256","typ":"JWT"}'


def test_the_reference_token_built_this_way_is_accepted(db: Database, settings: Settings,
                                                        account: Account) -> None:
    payload = json.dumps(claims_of(account)).encode()
    assert tokens.verify(db, settings, signed(HEADER, payload, settings)) == account.principal


@pytest.mark.parametrize("claim", ["exp", "iat"])
@pytest.mark.parametrize("kind", [str, float])
def test_numeric_dates_must_be_integers(db: Database, settings: Settings, account: Account,
                                        claim: str, kind: type) -> None:
    claims = claims_of(account)
    claims[claim] = kind(claims[claim])
    token = signed(HEADER, json.dumps(claims).encode(), settings)
    with pytest.raises(InvalidToken, match=f"{claim} must be an integer"):
        tokens.verify(db, settings, token)


def test_padding_is_refused(db: Database, settings: Settings, account: Account) -> None:
    payload = json.dumps(claims_of(account)).encode()  # grown until its base64 needs padding
    while len(payload) % 3 == 0:
        payload += b" "
    token = signed(HEADER, payload, settings, pad=True)
    assert "=" in token
    with pytest.raises(InvalidToken, match="malformed"):
        tokens.verify(db, settings, token)


@pytest.mark.parametrize("where", ["header", "payload"])
def test_duplicate_keys_are_refused(db: Database, settings: Settings, account: Account,
                                    where: str) -> None:
    claims = claims_of(account)
    body = json.dumps(claims)
    if where == "header":
        header, payload = b'{"alg":"HS256","typ":"JWT","alg":"HS256"}', body.encode()
    else:  # the first `sub` someone else's, the last (PyJWT's choice) the real one
        header = HEADER
        payload = ('{"sub":"00000000-0000-4000-8000-000000000000",' + body[1:]).encode()
    with pytest.raises(InvalidToken, match=f"{where} names a key twice"):
        tokens.verify(db, settings, signed(header, payload, settings))


@pytest.mark.parametrize("segment", ["[]", '"text"', "1", "null"])
def test_header_and_payload_must_be_objects(db: Database, settings: Settings,
                                            account: Account, segment: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.verify(db, settings, signed(segment.encode(), segment.encode(), settings))
