"""The collection fee: half-up to the currency's decimals, never below 0 nor above the amount."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.fees import collection_fee

percents = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def amounts(draw: st.DrawFn) -> tuple[Decimal, int]:
    decimals = draw(st.sampled_from([0, 2]))
    minor_units = draw(st.integers(min_value=0, max_value=10**15))
    return Decimal(minor_units).scaleb(-decimals), decimals


@given(amount=amounts(), percent=percents)
def test_fee_is_the_exact_product_rounded_half_up(amount, percent):
    value, decimals = amount

    fee = collection_fee(amount=value, percent=percent, decimals=decimals)

    # The exact fee in minor units, as a fraction, rounded half-up by integer arithmetic.
    numerator = int(value.scaleb(decimals)) * int(percent * 100)
    minor, remainder = divmod(numerator, 10_000)
    expected_minor = minor + (1 if remainder * 2 >= 10_000 else 0)
    assert fee == Decimal(expected_minor).scaleb(-decimals)
    assert 0 <= fee <= value
    assert fee.as_tuple().exponent == -decimals


@given(amount=amounts())
def test_no_fee_at_zero_percent_and_all_at_one_hundred(amount):
    value, decimals = amount

    assert collection_fee(amount=value, percent=Decimal(0), decimals=decimals) == 0
    assert collection_fee(amount=value, percent=Decimal(100), decimals=decimals) == value


@pytest.mark.parametrize(
    ("amount", "percent", "decimals", "fee"),
    [
        ("1000", "1.5", 0, "15"),
        ("1001", "1.5", 0, "15"),  # 15.015
        ("1030", "1.5", 0, "15"),  # 15.45
        ("1000", "2.55", 0, "26"),  # 25.5: half goes up
        ("10.10", "5", 2, "0.51"),  # 0.505: half goes up
        ("10.09", "5", 2, "0.50"),  # 0.5045
        ("1", "0.01", 0, "0"),
    ],
)
def test_known_fees(amount, percent, decimals, fee):
    assert collection_fee(
        amount=Decimal(amount), percent=Decimal(percent), decimals=decimals
    ) == Decimal(fee)


@pytest.mark.parametrize(
    ("amount", "percent", "decimals"),
    [("-1", "1", 0), ("1", "-0.01", 0), ("1", "100.01", 0), ("1.5", "1", 0), ("1", "1", -1)],
)
def test_bad_fee_inputs_are_refused(amount, percent, decimals):
    with pytest.raises(ValueError):  # noqa: PT011
        collection_fee(amount=Decimal(amount), percent=Decimal(percent), decimals=decimals)


def test_rounding_matches_decimal_half_up():
    fee = collection_fee(amount=Decimal("333"), percent=Decimal("50"), decimals=0)
    assert fee == Decimal("166.5").quantize(Decimal(1), rounding=ROUND_HALF_UP) == 167
