"""Hostile input for the property tests: Hypothesis strategies and the one outcome rule.

The rule (`outcome`): a service call returns, or raises a domain error. StorageError is the
driver's error wrapped, so for input validation it counts as a leak; ConfigurationError cannot
come from input; anything else is a crash. Both fail the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from taskhub.errors import ConfigurationError, StorageError, TaskhubError

T = TypeVar("T")

PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
"""Few, cheap examples on one database per test (the plugin audits it after the test)."""

SQL_METACHARACTERS = (
    "'", "''", '"', ";", "--", "/*", "*/", "\\", "%", "%s", "%(uid)s", ":uid", ":id", "$1", "$$",
    "?", "E'\\x00'", "'; DROP TABLE users; --", "' OR '1'='1", "\\u0000", "\\ud800", "{}", "[]",
    "null", "::uuid", "*", "_",
)
CONTROL = (*(chr(c) for c in range(0x20)), "\x7f", "\x85", "\u2028", "\u202e", "\ufeff",
           "\u200b")
UNICODE_FORMS = ("e\u0301", "\u00e9", "\uff11", "\ufb01", "\u212b", "\ufdfa", "\u0130", "\u00df",
                 "\u1e9e", "\u03a3", "\U0001d518", "\ud83d\ude00")  # the last: a surrogate pair
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())


def rarely(common: st.SearchStrategy[T], rare: st.SearchStrategy[T],
           one_in: int) -> st.SearchStrategy[T]:
    """`rare` about once in `one_in` draws, else `common`. (Repeating a branch in one_of does
    not weight it: Hypothesis explores one_of's branches evenly in a short run.)"""
    return st.sampled_from([False] * (one_in - 1) + [True]).flatmap(
        lambda pick_rare: rare if pick_rare else common)


def hostile_text(max_pieces: int = 4, *, huge: bool = True) -> st.SearchStrategy[str]:
    """Text of any code point: Hypothesis' own text with SQL metacharacters and Unicode
    oddities mixed in, often something PostgreSQL cannot store (NUL, a lone surrogate) or a
    control character, and (with `huge`) now and then a huge repetition (up to 1 MB)."""
    storable = st.one_of(st.text(st.characters(exclude_characters="\x00"), max_size=12),
                         st.sampled_from((*SQL_METACHARACTERS, *UNICODE_FORMS)))
    poison = st.one_of(st.sampled_from((*CONTROL, "\x00")),
                       st.text(SURROGATES, min_size=1, max_size=2))
    short = st.lists(rarely(storable, poison, 6), max_size=max_pieces).map("".join)
    return rarely(short, huge_text(), 8) if huge else short


def huge_text() -> st.SearchStrategy[str]:
    """A repetition just over a limit, or of 70 kB, 1 MB (of a NUL or a 4-byte character too)."""
    return st.builds(lambda unit, n: unit * n,
                     st.sampled_from(("a", "\u00e9", "'", "\x00", "\U0001d518", "a@b")),
                     st.sampled_from((255, 1025, 70_000, 1_000_000)))


def hostile_emails() -> st.SearchStrategy[str]:
    """Hostile text, often shaped `local@domain` (of visible characters, metacharacters
    and the odd hostile piece) so that much of it is accepted."""
    visible = st.text(st.characters(exclude_categories=("C", "Z"), exclude_characters="@"),
                      min_size=1, max_size=8)
    odd = st.sampled_from([m for m in (*SQL_METACHARACTERS, *UNICODE_FORMS) if " " not in m])
    part = st.lists(st.one_of(visible, odd, hostile_text(1, huge=False)), min_size=1,
                    max_size=3).map("".join)
    shaped = st.builds("{}@{}".format, part, part)
    return rarely(shaped, hostile_text(), 3)


def hostile_passwords(strong: str) -> st.SearchStrategy[str]:
    """Hostile text, often after a strong prefix so that some of it is accepted and hashed."""
    return rarely(st.builds(strong.__add__, hostile_text()), hostile_text(), 3)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like values with hostile strings, huge integers, NaN and infinities,
    and now and then a huge string or a nesting far deeper than PostgreSQL needs to hold."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                        rarely(hostile_text(2, huge=False), huge_text(), 20))
    trees = st.recursive(scalars, lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(hostile_text(2, huge=False), children, max_size=4)),
        max_leaves=max_leaves)
    return rarely(trees, st.integers(1, 500).map(_nested), 8)


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary payloads: JSON objects whose values are `json_values()`."""
    return st.dictionaries(hostile_text(max_pieces=2), json_values(), max_size=5)


def forms_of(real: uuid.UUID) -> tuple[uuid.UUID | str, ...]:
    """`real` as a UUID and in every string form uuid.UUID accepts."""
    return (real, str(real), str(real).upper(), real.hex, f"{{{real}}}", real.urn)


def any_id(known: list[uuid.UUID]) -> st.SearchStrategy[Any]:
    """A known id in any form, a random UUID, or something that is not a UUID at all."""
    strategies = [st.uuids(), st.uuids().map(str), garbage_ids()]
    if known:
        strategies.append(st.sampled_from([form for real in known for form in forms_of(real)]))
    return st.one_of(*strategies)


def garbage_ids() -> st.SearchStrategy[Any]:
    """Values that are not UUIDs in any form."""
    return st.one_of(hostile_text(), st.integers(), st.none(), st.binary(max_size=16))


def id_picks() -> st.SearchStrategy[Callable[[list[uuid.UUID]], Any]]:
    """Like `any_id`, for ids known only when the example runs: a choice drawn up front (so
    the draws never depend on the database), applied to the ids of the moment."""
    def pick(kind: str, index: int, form: int, fresh: uuid.UUID,
             garbage: Any) -> Callable[[list[uuid.UUID]], Any]:
        def choose(known: list[uuid.UUID]) -> Any:
            if kind == "known" and known:
                return forms_of(known[index % len(known)])[form]
            return {"garbage": garbage, "text": str(fresh)}.get(kind, fresh)
        return choose

    return st.builds(pick, st.sampled_from(("known", "known", "uuid", "text", "garbage")),
                     st.integers(0, 10**6), st.integers(0, 5), st.uuids(), garbage_ids())


def outcome(call: Callable[[], T]) -> T | TaskhubError:
    """The call's result or its domain error; AssertionError for a leak, crashes propagate."""
    try:
        return call()
    except (StorageError, ConfigurationError) as exc:
        raise AssertionError(f"not a domain error: {type(exc).__name__} "
                             f"(sqlstate {getattr(exc, 'sqlstate', None)}): {exc}") from exc
    except TaskhubError as exc:
        return exc


def canonical(value: Any) -> Any:
    """`value` as it reads back from jsonb: numbers compared as decimals (jsonb keeps the
    number's text, so 1e300 comes back as the integer 10**300), tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: canonical(v) for k, v in value.items()}
    return [canonical(item) for item in value]


def round_trips(sent: Any, stored: Any) -> bool:
    """Whether jsonb gave back what was sent."""
    return bool(canonical(json.loads(json.dumps(sent))) == canonical(stored))


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value

