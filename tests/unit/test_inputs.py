"""Boundary validation (taskhub.inputs): what PostgreSQL could not store is refused up front."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskhub import inputs
from taskhub.errors import InputTooLarge, InvalidInput


@pytest.mark.parametrize("value", ["plain", "", " ", "'; DROP TABLE users; --", "\x01\x1f\x7f",
                                   "e\u0301", "\U0001d518", "\U0001f600"])
def test_storable_text_passes(value: str) -> None:
    assert inputs.text(value, "title") is value


@pytest.mark.parametrize(("value", "message"), [
    ("a\x00b", "title must not contain NUL"), ("\ud800", "lone surrogate"),
    ("ok\udfff", "lone surrogate"), ("\ud83d\ude00", "lone surrogate"),  # a pair, but as two
    (b"bytes", "must be a string"), (None, "must be a string"), (5, "must be a string"),
])
def test_unstorable_text_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        inputs.text(value, "title")


def test_uuid_forms() -> None:
    real = uuid.uuid4()
    for form in (real, str(real), str(real).upper(), real.hex, f"{{{real}}}", real.urn):
        assert inputs.uuid_of(form, "task id") == real
    for bad in ("", "not-a-uuid", str(real)[:-1], "\x00", "x" * 10**6, 5, None, real.bytes,
                [str(real)]):
        with pytest.raises(InvalidInput, match="task id must be a UUID"):
            inputs.uuid_of(bad, "task id")


@pytest.mark.parametrize("value", [True, False, 0, 11, -1, 1.0, "5", None, 10**30])
def test_count_refuses_bools_floats_and_out_of_range(value: object) -> None:
    with pytest.raises(InvalidInput, match="between 1 and 10"):
        inputs.count(value, "limit", 1, 10)
    assert inputs.count(10, "limit", 1, 10) == 10


@pytest.mark.parametrize("value", [
    {}, [], "", 0, -0.0, 1e308, 10**100, None, True, {"k": [1, {"n": None}]},
    {"'; DROP TABLE tasks; --": "$$", ":uid": "%(uid)s", "\\u0000": "\\"},
    {"\x01": "\x1f"}, {"e\u0301": "\U0001d518"}, ["nested"] * 100,
])
def test_json_documents_pass(value: Any) -> None:
    assert json.loads(inputs.json_document(value, "payload")) == json.loads(json.dumps(value))


@pytest.mark.parametrize(("value", "error", "message"), [
    ({"k": "\x00"}, InvalidInput, "a string in payload must not contain NUL"),
    ({"\x00": 1}, InvalidInput, "a key in payload must not contain NUL"),
    (["\ud800"], InvalidInput, "lone surrogate"),
    ({"\udc00": 1}, InvalidInput, "lone surrogate"),
    (float("nan"), InvalidInput, "JSON-serialisable"),
    ({"k": float("inf")}, InvalidInput, "JSON-serialisable"),
    ({"k": object()}, InvalidInput, "JSON-serialisable"),
    ({(1, 2): 1}, InvalidInput, "JSON-serialisable"),
    ({"k": {1, 2}}, InvalidInput, "JSON-serialisable"),
    ({"k": 10**5000}, InvalidInput, "JSON-serialisable"),
    ("x" * inputs.MAX_JSON_BYTES, InputTooLarge, "larger than"),
    (["x"] * inputs.MAX_JSON_BYTES, InputTooLarge, "larger than"),
    ({str(i): i for i in range(20_000)}, InputTooLarge, "larger than"),
])
def test_json_documents_refused(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        inputs.json_document(value, "payload")


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_json_depth_is_capped_before_encoding() -> None:
    inputs.json_document(nested(inputs.MAX_JSON_DEPTH), "payload")
    for depth in (inputs.MAX_JSON_DEPTH + 1, 100_000):  # json.dumps would hit RecursionError
        with pytest.raises(InputTooLarge, match="nested deeper than 64"):
            inputs.json_document(nested(depth), "payload")
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(InputTooLarge, match="nested deeper"):
        inputs.json_document(cyclic, "payload")


def test_huge_json_is_refused_within_the_budget() -> None:
    """The walk stops when the budget is spent: it never reaches the unserialisable first
    element, which json.dumps (encoding the whole list) would have met at once."""
    with pytest.raises(InputTooLarge):
        inputs.json_document([object(), *[0] * 1_000_000], "payload")
    with pytest.raises(InvalidInput, match="JSON-serialisable"):
        inputs.json_document([object(), *[0] * 1_000], "payload")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(), children, max_size=4), max_leaves=20))
def test_any_json_value_is_encoded_faithfully_or_refused(value: Any) -> None:
    try:
        encoded = inputs.json_document(value, "payload")
    except InvalidInput:  # NaN/infinity, NUL; InputTooLarge is a subclass
        return
    assert json.loads(encoded) == json.loads(json.dumps(value))


@pytest.mark.parametrize("invisible", [
    "\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
@pytest.mark.parametrize("where", ["{}text", "te{}xt", "text{}"])
def test_bidi_controls_and_zero_width_characters_are_refused(invisible: str, where: str) -> None:
    with pytest.raises(InvalidInput, match=f"U\\+{ord(invisible):04X}"):
        inputs.text(where.format(invisible), "title")


def test_visible_unicode_is_kept() -> None:
    for shown in ("Ünïcödé", "日本語", "עברית", "العربية", "emoji 🎉", "tab\tand newline\n"):
        assert inputs.text(shown, "title") == shown
