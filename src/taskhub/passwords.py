"""Password policy and hashing: NFKC + a byte cap, zxcvbn strength, Argon2id, reuse check.

Pure functions (no database). Every function takes the password as the user typed it and
normalises it itself, so hashing and verifying can never disagree about the form.
"""

from __future__ import annotations

import base64
import re
import secrets
import statistics
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Iterable
from functools import cache

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from taskhub.errors import InputTooLarge, InvalidInput, WeakPassword
from taskhub.settings import Argon2Params, Hasher, Settings

ZXCVBN_MAX_CHARS = 72
"""zxcvbn refuses longer input; the strength of a longer password is judged on its start."""

EMPTY_SUGGESTION = "Add another word or two. Uncommon words are better."
"""zxcvbn's own advice, given for an empty password (which zxcvbn cannot score)."""

_zxcvbn_lock = threading.Lock()  # zxcvbn keeps the user inputs in a module-level dictionary


@cache
def hasher(params: Argon2Params) -> PasswordHasher:
    """The Argon2id hasher for these parameters (one per parameter set)."""
    return PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_cost,
                          parallelism=params.parallelism, type=Type.ID)


def normalise(password: str, settings: Settings) -> str:
    """The NFKC form of `password`; InputTooLarge if it (or the input) exceeds the byte cap.

    InvalidInput for what is not text (not a string, or a lone surrogate UTF-8 cannot encode).
    NUL characters are allowed: Argon2 takes the password with its length, never truncates.
    """
    limit = settings.max_password_bytes
    if not isinstance(password, str):
        raise InvalidInput("password must be a string")
    # Checked first (characters, then bytes): NFKC can expand input up to 18 times.
    if len(password) > limit or len(_utf8(password)) > limit:
        raise InputTooLarge(f"password longer than {limit} bytes (UTF-8)")
    normal = unicodedata.normalize("NFKC", password)
    if len(normal.encode()) > limit:
        raise InputTooLarge(f"password longer than {limit} bytes (UTF-8) once normalised")
    return normal


def _utf8(password: str) -> bytes:
    try:
        return password.encode()
    except UnicodeEncodeError:
        raise InvalidInput("password is not valid Unicode (it holds a lone surrogate)") from None


def _hasher(settings: Settings) -> Hasher:
    """The settings' hasher for their parameters (argon2-cffi's unless they name one)."""
    return (settings.hasher or hasher)(settings.argon2)


def hash_password(password: str, settings: Settings) -> str:
    """An Argon2id PHC string (`$argon2id$v=19$m=...`) of the normalised password."""
    return _hasher(settings).hash(normalise(password, settings))


def verify(stored_hash: str, password: str, settings: Settings) -> bool:
    """Whether `password` matches `stored_hash` (whatever parameters that hash was made with).

    The duration of every verification at the current parameters is kept (the last
    COST_SAMPLES), as the reference `pad_to_current_cost` waits for.
    """
    started = time.perf_counter()
    try:
        return _hasher(settings).verify(stored_hash, normalise(password, settings))
    except (VerificationError, InvalidHashError):
        return False
    finally:
        if costs_current(stored_hash, settings.argon2):
            _costs(settings.argon2).append(time.perf_counter() - started)


def _argon2id_cost(stored_hash: str) -> Argon2Params | None:
    """The cost `stored_hash` was made with, or None if it is not an Argon2id hash."""
    try:
        made = extract_parameters(stored_hash)
    except InvalidHashError:
        return None
    if made.type is not Type.ID:
        return None
    return Argon2Params(made.time_cost, made.memory_cost, made.parallelism)


def costs_current(stored_hash: str, params: Argon2Params) -> bool:
    """Whether `stored_hash` is an Argon2id hash made with exactly `params`."""
    return _argon2id_cost(stored_hash) == params


def pad_to_current_cost(started: float, settings: Settings) -> None:
    """Wait until a verification begun at `started` (perf_counter) has taken as long as one at
    the current parameters usually does (the median of the last ones; a dummy verification
    measures it if there is none yet).

    For a wrong password to an account whose hash is older and cheaper: without this, its
    refusal comes back faster than any other and tells that the account exists, and how old
    its password is.
    """
    reference = current_cost(settings)
    if reference is None:
        verify(_dummy_hash(settings.argon2), "", settings)
        reference = current_cost(settings) or 0.0
    remaining = started + reference - time.perf_counter()
    if remaining > 0:
        time.sleep(remaining)


def current_cost(settings: Settings) -> float | None:
    """Seconds a verification at the current parameters takes here (median of the last
    COST_SAMPLES), or None before the first one."""
    samples = _costs(settings.argon2)
    return statistics.median(samples) if samples else None


COST_SAMPLES = 32
_cost_samples: dict[Argon2Params, deque[float]] = {}


def _costs(params: Argon2Params) -> deque[float]:
    return _cost_samples.setdefault(params, deque(maxlen=COST_SAMPLES))


def needs_rehash(stored_hash: str, settings: Settings) -> bool:
    """Whether `stored_hash` was made with parameters other than the current settings'."""
    return _hasher(settings).check_needs_rehash(stored_hash)


def cheaper_than(stored_hash: str, params: Argon2Params) -> bool:
    """Whether `stored_hash` costs less than `params` in memory, time or parallelism (a hash
    that is not Argon2id counts as cheaper)."""
    made = _argon2id_cost(stored_hash)
    return made is None or made.memory_cost < params.memory_cost or \
        made.time_cost < params.time_cost or made.parallelism < params.parallelism


def verify_dummy(password: str, settings: Settings) -> None:
    """Spend the time of one verification, for logins with an unknown email."""
    verify(_dummy_hash(settings.argon2), password, settings)


@cache
def _dummy_hash(params: Argon2Params) -> str:
    """A well-formed Argon2id PHC string with these parameters and a random salt and digest.

    Verifying against it costs one real verification (Argon2 recomputes the digest, which then
    differs), and making it costs nothing: even the first unknown-email login of a process
    takes as long as a wrong password (hashing a dummy password would add one hash to it).
    """
    salt, digest = (base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=")
                    for n in (16, 32))  # argon2-cffi's default salt and hash lengths
    return (f"$argon2id$v=19$m={params.memory_cost},t={params.time_cost},"
            f"p={params.parallelism}${salt}${digest}")


def check_strength(password: str, email: str, settings: Settings) -> None:
    """Raise WeakPassword (with zxcvbn's warning and suggestions) below the minimum score."""
    normal = normalise(password, settings)
    if not normal:  # zxcvbn itself fails on empty input (IndexError)
        raise WeakPassword(0, "The password is empty.", [EMPTY_SUGGESTION])
    local = email.partition("@")[0]
    inputs = [email, local, *(part for part in re.split(r"[^\w]+", local) if part)]
    with _zxcvbn_lock:
        verdict = zxcvbn(normal[:ZXCVBN_MAX_CHARS], user_inputs=inputs)
    if verdict["score"] < settings.min_password_score:
        feedback = verdict["feedback"]
        raise WeakPassword(verdict["score"], feedback["warning"], feedback["suggestions"])


def matches_any(password: str, stored_hashes: Iterable[str], settings: Settings) -> bool:
    """Whether `password` matches any of `stored_hashes` (for the no-reuse rule)."""
    return any(verify(stored, password, settings) for stored in stored_hashes)
