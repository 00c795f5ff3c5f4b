"""Validation of untrusted values at the services' boundary (pure functions, no database).

PostgreSQL cannot store everything a Python value can hold: `text` refuses NUL characters,
`jsonb` refuses `\\u0000` and lone surrogates, and UTF-8 cannot encode a lone surrogate at all.
The services check their arguments here first, so such input is refused with a clear
InvalidInput instead of reaching the driver (or being changed silently: two lone surrogates
that form a pair would come back from `jsonb` as one astral character). Text that people read
(emails, titles, error messages, worker names) also refuses characters that change how it
displays without being seen: bidirectional controls and zero-width characters. Passwords are
not such text (any character is allowed; see `taskhub.passwords`), nor are JSON values.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from taskhub.errors import InputTooLarge, InvalidInput

MAX_JSON_BYTES = 64 * 1024
"""Largest accepted JSON document (payload, result), in bytes of its ASCII JSON text."""
MAX_JSON_DEPTH = 64
"""Deepest accepted nesting of arrays and objects in a JSON document."""

_SCALARS = (str, int, float, bool, type(None))
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters that change how text displays without being seen ("Trojan Source", look-alike
# names): bidirectional controls (ALM, LRM, RLM, the embeddings, overrides and isolates) and
# zero-width characters (ZWSP, ZWNJ, ZWJ, word joiner, and U+FEFF, a BOM when leading).
_INVISIBLE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                        "\u200b-\u200d\u2060\ufeff]")


def text(value: object, name: str) -> str:
    """`value` if it is a string PostgreSQL can store and that shows what it holds;
    InvalidInput naming `name` otherwise (NUL, a lone surrogate, a bidirectional control or
    a zero-width character, a BOM included)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    if _SURROGATE.search(value):
        raise InvalidInput(f"{name} is not valid Unicode (it holds a lone surrogate)")
    found = _INVISIBLE.search(value)
    if found:
        raise InvalidInput(f"{name} must not contain invisible formatting characters "
                           f"(U+{ord(found.group()):04X} at position {found.start()})")
    return value


def uuid_of(value: object, name: str) -> uuid.UUID:
    """`value` as a UUID (a UUID or its string form); InvalidInput otherwise."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) <= 64:  # the longest form is `urn:uuid:{...}`
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidInput(f"{name} must be a UUID")


def count(value: object, name: str, low: int, high: int) -> int:
    """`value` if it is an int (not a bool) in [low, high]; InvalidInput otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer between {low} and {high}")
    return value


def json_document(value: Any, name: str) -> str:
    """`value` as JSON text for a `jsonb` column.

    InvalidInput unless it is made of dicts, lists, strings, finite numbers, booleans and None
    with strings PostgreSQL can store; InputTooLarge above MAX_JSON_BYTES or MAX_JSON_DEPTH.
    The tree is walked (with a budget) before it is encoded, so a huge or cyclic value costs
    at most the budget.
    """
    _check_tree(value, name)
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):  # nan/inf, keys json cannot take, ints beyond 4300 digits
        raise InvalidInput(f"{name} must be JSON-serialisable") from None
    if len(encoded) > MAX_JSON_BYTES:  # ASCII: characters are bytes
        raise InputTooLarge(f"{name} larger than {MAX_JSON_BYTES} bytes as JSON")
    return encoded


def _check_tree(value: Any, name: str) -> None:
    """Refuse what PostgreSQL's jsonb cannot hold, within a budget of MAX_JSON_BYTES units.

    Every node and every character costs at least one byte of JSON text, so running out of
    budget proves the document too large without encoding it.
    """
    budget = MAX_JSON_BYTES

    def spend(units: int) -> None:
        nonlocal budget
        budget -= units
        if budget < 0:
            raise InputTooLarge(f"{name} larger than {MAX_JSON_BYTES} bytes as JSON")

    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        spend(1)
        if isinstance(node, str):
            spend(len(node))
            text(node, f"a string in {name}")
        elif isinstance(node, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise InputTooLarge(f"{name} nested deeper than {MAX_JSON_DEPTH} levels")
            for key in node if isinstance(node, dict) else ():
                if isinstance(key, str):
                    spend(len(key))
                    text(key, f"a key in {name}")
                elif not isinstance(key, _SCALARS):
                    raise InvalidInput(f"{name} must be JSON-serialisable")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif not isinstance(node, _SCALARS):
            raise InvalidInput(f"{name} must be JSON-serialisable")

