"""gateway.money: exact parsing and formatting of amounts, by the contract's rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from gateway.money import (
    CURRENCY_DECIMALS,
    MoneyError,
    format_amount,
    parse_amount,
    parse_currency,
    same_amount,
)
from gateway.parsers import loads_strict

MAX = int(settings.PAYMENT_MAX_AMOUNT)
ZERO_DECIMAL = ["UGX", "RWF", "XAF", "XOF"]
TWO_DECIMALS = ["ZMW", "GHS", "EUR"]


def json_number(text: str) -> object:
    """A number as the API's JSON parser hands it over (keeping its literal text)."""
    return loads_strict(text.encode())


@pytest.mark.parametrize("currency", ZERO_DECIMAL)
def test_zero_decimal_currencies_have_no_decimals(currency):
    assert CURRENCY_DECIMALS[currency] == 0


@pytest.mark.parametrize("currency", TWO_DECIMALS)
def test_two_decimal_currencies_have_two(currency):
    assert CURRENCY_DECIMALS[currency] == 2


@pytest.mark.parametrize(
    ("value", "currency", "expected", "shown"),
    [
        (1000, "UGX", Decimal("1000"), "1000"),
        ("1000", "UGX", Decimal("1000"), "1000"),
        ("1000.0", "UGX", Decimal("1000"), "1000"),
        ("1000.000", "RWF", Decimal("1000"), "1000"),
        ("10.50", "EUR", Decimal("10.50"), "10.50"),
        ("10.5", "EUR", Decimal("10.50"), "10.50"),
        ("10.500", "EUR", Decimal("10.50"), "10.50"),
        ("7", "GHS", Decimal("7.00"), "7.00"),
        ("0.01", "ZMW", Decimal("0.01"), "0.01"),
        ("1", "XOF", Decimal("1"), "1"),
        (str(MAX), "UGX", Decimal(MAX), str(MAX)),
        (f"{MAX}.00", "EUR", Decimal(MAX), f"{MAX}.00"),
    ],
)
def test_valid_amounts_parse_and_format(value, currency, expected, shown):
    amount = parse_amount(value, currency)
    assert amount == expected
    assert format_amount(amount, currency) == shown


@pytest.mark.parametrize(
    ("text", "currency", "shown"),
    [("1000", "UGX", "1000"), ("1000.0", "UGX", "1000"), ("10.50", "EUR", "10.50")],
)
def test_json_numbers_parse_from_their_literal_text(text, currency, shown):
    assert format_amount(parse_amount(json_number(text), currency), currency) == shown


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("10.505", "EUR"),
        ("0.001", "GHS"),
        ("1000.5", "UGX"),
        ("1.1", "XAF"),
        ("0.5", "RWF"),
    ],
)
def test_more_decimals_than_the_currency_has_are_refused(value, currency):
    with pytest.raises(MoneyError, match="decimal"):
        parse_amount(value, currency)


@pytest.mark.parametrize("value", ["0", "0.00", "-1", "-0", "-10.50", 0, -5])
def test_zero_and_negative_amounts_are_refused(value):
    with pytest.raises(MoneyError):
        parse_amount(value, "EUR")


def test_amount_above_the_maximum_is_refused():
    with pytest.raises(MoneyError, match="at most"):
        parse_amount(str(MAX + 1), "UGX")
    with pytest.raises(MoneyError, match="at most"):
        parse_amount(f"{MAX}.01", "EUR")


def test_the_maximum_is_configurable(settings):
    settings.PAYMENT_MAX_AMOUNT = Decimal("500")
    assert parse_amount("500", "UGX") == Decimal("500")
    with pytest.raises(MoneyError, match="at most 500"):
        parse_amount("501", "UGX")


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        "",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "1e3",
        "1E3",
        "1e-2",
        "1.5e2",
        " 100",
        "100 ",
        "100\n",
        "+100",
        "1,000",
        "1_000",
        "10.",
        ".5",
        "0x10",
        "١٠٠",
        "１００",
        [100],
        {"value": 100},
        Decimal("100"),
        float("nan"),
        float("inf"),
    ],
)
def test_non_amounts_are_refused(value):
    with pytest.raises(MoneyError):
        parse_amount(value, "UGX")


@pytest.mark.parametrize("text", ["1e3", "1E3", "1e+3", "1.0e3", "10E-1", "1e400"])
def test_json_numbers_with_an_exponent_are_refused(text):
    with pytest.raises(MoneyError):
        parse_amount(json_number(text), "UGX")


@given(st.integers(min_value=1, max_value=MAX), st.sampled_from(ZERO_DECIMAL + TWO_DECIMALS))
def test_any_valid_integer_amount_round_trips(value, currency):
    for written in (value, str(value), json_number(str(value))):
        amount = parse_amount(written, currency)
        assert amount == value
        shown = format_amount(amount, currency)
        expected = str(value) if CURRENCY_DECIMALS[currency] == 0 else f"{value}.00"
        assert shown == expected
        assert parse_amount(shown, currency) == amount


@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(MAX), places=2),
    st.sampled_from(TWO_DECIMALS),
    st.integers(min_value=0, max_value=3),
)
def test_any_two_decimal_amount_round_trips_with_trailing_zeros(value, currency, extra_zeros):
    text = f"{value:.2f}" + "0" * extra_zeros
    amount = parse_amount(text, currency)
    assert amount == value
    assert format_amount(amount, currency) == f"{value:.2f}"
    assert parse_amount(json_number(text), currency) == value


@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["e", "E"]),
    st.sampled_from(["", "+", "-"]),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
)
def test_anything_with_an_exponent_is_refused(mantissa, mark, sign, exponent, as_json_number):
    text = f"{mantissa}{mark}{sign}{exponent}"
    value = json_number(text) if as_json_number else text
    with pytest.raises(MoneyError):
        parse_amount(value, "UGX")


any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet="0123456789.-+eE ", max_size=40),
    st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{0,40})?", fullmatch=True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


@given(any_value, st.sampled_from([*CURRENCY_DECIMALS, None]))
def test_parse_amount_never_raises_anything_but_money_error(value, currency):
    try:
        amount = parse_amount(value, currency)
    except MoneyError:
        return
    assert isinstance(amount, Decimal)
    assert amount.is_finite()
    assert 0 < amount <= settings.PAYMENT_MAX_AMOUNT


@given(st.one_of(st.text(max_size=20), st.text(alphabet="0123456789.-\n\t ", max_size=12)))
def test_parsed_strings_are_plain_decimals(text):
    try:
        amount = parse_amount(text, "EUR")
    except MoneyError:
        return
    assert text.strip() == text
    assert all(ch in "0123456789." for ch in text)
    assert amount == Decimal(text)


@pytest.mark.parametrize("currency", [*ZERO_DECIMAL, *TWO_DECIMALS])
def test_supported_currencies_parse(currency):
    assert parse_currency(currency) == currency


@pytest.mark.parametrize("value", ["ugx", "USDT", "XYZ", "", " UGX", 800, None, True, ["UGX"]])
def test_unsupported_currencies_are_refused(value):
    with pytest.raises(MoneyError):
        parse_currency(value)


def test_same_amount_compares_money_not_text():
    assert same_amount(Decimal("12.50"), Decimal("12.5"))
    assert not same_amount(Decimal("12.50"), Decimal("12.51"))
    assert not same_amount(None, Decimal("1"))
