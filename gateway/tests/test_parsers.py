"""The strict JSON parser: keeps numbers' literal text, refuses what is not plain JSON."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import MalformedJson, PayloadTooLarge
from gateway.parsers import JsonFloat, JsonInt, StrictJSONParser, loads_strict, read_limited


def test_numbers_keep_their_literal_text():
    data = loads_strict(b'{"a": 1000, "b": 10.50, "c": 1e3, "d": -0}')

    assert isinstance(data["a"], JsonInt)
    assert data["a"] == 1000
    assert data["a"].text == "1000"
    assert isinstance(data["b"], JsonFloat)
    assert data["b"].text == "10.50"
    assert data["c"].text == "1e3"
    assert data["d"].text == "-0"


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"",
        b"{",
        b"{'a': 1}",
        b'{"a": 1} {"b": 2}',
        b"\xff",
        b"[" * 100_000,
        b"1" * 101,
        b"0." + b"1" * 100,
        b'"\\ud800"',
        b'{"a": "x\\udfffy"}',
        b'{"\\uDBFF": 1}',
        b'["\\ude00\\ud83d"]',
    ],
    ids=[
        "nan",
        "nan-in-object",
        "infinity",
        "minus-infinity",
        "empty",
        "truncated",
        "single-quotes",
        "two-documents",
        "not-utf8",
        "too-deep",
        "long-integer",
        "long-fraction",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "surrogate-in-key",
        "pair-in-wrong-order",
    ],
)
def test_what_is_not_plain_json_is_malformed(raw):
    with pytest.raises(MalformedJson):
        loads_strict(raw)


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_raise_malformed_json(raw):
    with contextlib.suppress(MalformedJson):
        loads_strict(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_plain_json_round_trips(value):
    assert loads_strict(json.dumps(value).encode()) == value


def test_an_escaped_surrogate_pair_is_one_character():
    assert loads_strict(b'{"emoji": "\\ud83d\\ude00", "escaped": "\\\\ud800"}') == {
        "emoji": "\U0001f600",
        "escaped": "\\ud800",
    }


def test_an_empty_body_parses_as_an_empty_object():
    assert StrictJSONParser().parse(io.BytesIO(b"  \n")) == {}


def test_a_body_over_the_limit_is_refused():
    assert read_limited(io.BytesIO(b"x" * 10), limit=10) == b"x" * 10
    with pytest.raises(PayloadTooLarge):
        read_limited(io.BytesIO(b"x" * 11), limit=10)
