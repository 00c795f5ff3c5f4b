"""Password normalisation, hashing and strength (pure functions, no database)."""

from __future__ import annotations

import dataclasses

import pytest
from zxcvbn import zxcvbn

from taskhub import passwords
from taskhub.errors import InputTooLarge, InvalidInput, WeakPassword
from taskhub.settings import TEST_ARGON2, Argon2Params, Settings

SETTINGS = Settings(argon2=TEST_ARGON2, jwt_secret="unit-test-secret-" + "x" * 32)
STRONG = "violet-harbor-1-quietly-tangerine"


def test_hash_is_an_argon2id_phc_string_that_verifies() -> None:
    stored = passwords.hash_password(STRONG, SETTINGS)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert passwords.verify(stored, STRONG, SETTINGS)
    assert not passwords.verify(stored, STRONG + "!", SETTINGS)


def test_garbage_hash_does_not_verify() -> None:
    assert not passwords.verify("not a hash", STRONG, SETTINGS)


def test_nfkc_equivalent_spellings_verify() -> None:
    ligature, plain = "\ufb01ne-harbor-quietly-tangerine", "fine-harbor-quietly-tangerine"
    fullwidth = "\uff46ine-harbor-quietly-tangerine"  # FULLWIDTH LATIN SMALL LETTER F
    stored = passwords.hash_password(ligature, SETTINGS)
    assert passwords.normalise(ligature, SETTINGS) == plain
    assert passwords.verify(stored, plain, SETTINGS)
    assert passwords.verify(stored, fullwidth, SETTINGS)


def test_cap_counts_utf8_bytes() -> None:
    small = dataclasses.replace(SETTINGS, max_password_bytes=16)
    assert passwords.normalise("a" * 16, small) == "a" * 16
    with pytest.raises(InputTooLarge, match="16 bytes"):
        passwords.normalise("\u00e9" * 9, small)  # 9 characters, 18 bytes
    with pytest.raises(InputTooLarge):
        passwords.hash_password("a" * 17, small)


def test_cap_applies_after_normalisation() -> None:
    small = dataclasses.replace(SETTINGS, max_password_bytes=16)
    expanding = "\ufdfa"  # one 3-byte character that NFKC expands to 18 characters
    with pytest.raises(InputTooLarge, match="normalised"):
        passwords.normalise(expanding, small)


def test_needs_rehash_follows_the_parameters() -> None:
    stored = passwords.hash_password(STRONG, SETTINGS)
    heavier = dataclasses.replace(SETTINGS, argon2=Argon2Params(2, 2048, 1))
    assert not passwords.needs_rehash(stored, SETTINGS)
    assert passwords.needs_rehash(stored, heavier)
    assert passwords.verify(stored, STRONG, heavier)  # old hashes still verify


def test_weak_password_carries_zxcvbn_feedback() -> None:
    with pytest.raises(WeakPassword) as caught:
        passwords.check_strength("password", "someone@example.com", SETTINGS)
    error = caught.value
    assert error.score < SETTINGS.min_password_score
    feedback = zxcvbn("password", user_inputs=["someone@example.com", "someone"])["feedback"]
    assert error.warning == feedback["warning"] != ""
    assert list(error.suggestions) == feedback["suggestions"] != []
    assert error.warning in str(error)
    assert all(tip in str(error) for tip in error.suggestions)


def test_email_is_context_for_strength() -> None:
    # Random-looking on its own (score 4), but it is the user's own email local part.
    passwords.check_strength("qzxvbrtplkm1", "someone@example.com", SETTINGS)
    with pytest.raises(WeakPassword):
        passwords.check_strength("qzxvbrtplkm1", "qzxvbrtplkm@example.com", SETTINGS)


def test_strength_of_long_passwords_is_judged() -> None:
    passwords.check_strength(STRONG * 10, "someone@example.com", SETTINGS)
    with pytest.raises(WeakPassword):
        passwords.check_strength("a" * 500, "someone@example.com", SETTINGS)


def test_matches_any_and_dummy() -> None:
    hashes = [passwords.hash_password(p, SETTINGS) for p in ("first-pass-phrase-x", STRONG)]
    assert passwords.matches_any(STRONG, hashes, SETTINGS)
    assert not passwords.matches_any("something-else-entirely-42", hashes, SETTINGS)
    passwords.verify_dummy(STRONG, SETTINGS)  # returns nothing, raises nothing


def test_empty_password_is_weak_not_a_crash() -> None:
    """zxcvbn raises IndexError on an empty string; the policy refuses it first."""
    with pytest.raises(WeakPassword, match="empty") as caught:
        passwords.check_strength("", "someone@example.com", SETTINGS)
    assert caught.value.score == 0 and caught.value.suggestions


@pytest.mark.parametrize("bad", ["\ud800", STRONG + "\udfff", "\ud83d\ude00" + STRONG])
def test_lone_surrogates_are_refused_not_a_crash(bad: str) -> None:
    stored = passwords.hash_password(STRONG, SETTINGS)
    for call in (lambda: passwords.hash_password(bad, SETTINGS),
                 lambda: passwords.verify(stored, bad, SETTINGS),
                 lambda: passwords.check_strength(bad, "someone@example.com", SETTINGS)):
        with pytest.raises(InvalidInput, match="lone surrogate"):
            call()


def test_nul_does_not_truncate_the_password() -> None:
    with_nul = "violet-harbor\x00-quietly-tangerine"
    stored = passwords.hash_password(with_nul, SETTINGS)
    assert passwords.verify(stored, with_nul, SETTINGS)
    for prefix in ("violet-harbor", "violet-harbor\x00", "violet-harbor-quietly-tangerine"):
        assert not passwords.verify(stored, prefix, SETTINGS)


def test_a_megabyte_is_refused_before_any_encoding_work() -> None:
    with pytest.raises(InputTooLarge, match="1024 bytes"):
        passwords.normalise("a" * 1_000_000, SETTINGS)
    with pytest.raises(InputTooLarge):  # over the cap in characters: not even encoded
        passwords.normalise("\ud800" * 1_000_000, SETTINGS)
