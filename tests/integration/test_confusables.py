"""Emails that only look alike (the same UTS #39 skeleton) are one address."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from taskhub import users
from taskhub.confusables import skeleton
from taskhub.db import Database
from taskhub.errors import EmailTaken
from taskhub.settings import Settings
from tests.integration.helpers import Account, password

LOOKALIKES = [
    ("paypal@example.com", "p\u0430yp\u0430l@example.com"),  # Cyrillic a
    ("modern@example.com", "rnodern@example.com"),  # rn looks like m
    ("bill@example.com", "bi1l@example.com"),  # 1 looks like l
    ("scope@example.com", "\u0455c\u043ep\u0435@example.com"),  # Cyrillic s, o, e
    ("alice@example.com", "\u0251lice@example.com"),  # Latin alpha
]


def test_lookalikes_share_a_skeleton_and_different_addresses_do_not() -> None:
    for real, fake in LOOKALIKES:
        assert skeleton(real) == skeleton(fake), fake
    assert skeleton("alice@example.com") != skeleton("alicia@example.com")


@pytest.mark.parametrize(("real", "fake"), LOOKALIKES)
def test_registering_a_lookalike_of_an_account_is_refused_as_taken(
        db: Database, settings: Settings, real: str, fake: str) -> None:
    users.register(db, settings, real, password(1))
    with pytest.raises(EmailTaken):
        users.register(db, settings, fake, password(2))
    users.register(db, settings, fake.replace("@", "+2@"), password(3))  # the other way round
    with pytest.raises(EmailTaken):
        users.register(db, settings, real.replace("@", "+2@"), password(4))


def test_changing_an_email_to_a_lookalike_is_refused(
        db: Database, settings: Settings, make_account: Callable[..., Account]) -> None:
    make_account("paypal@example.com")
    other = make_account()
    with pytest.raises(EmailTaken):
        users.update_email(db, other.principal, "p\u0430yp\u0430l@example.com")
    assert users.get(db, other.principal).email == other.user.email
