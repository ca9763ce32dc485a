"""Field rules of the create serializers that are best checked exhaustively (MSISDNs)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.api.serializers import PaymentCreateSerializer, PayoutCreateSerializer


def validate(serializer_class, **fields):
    body = {"amount": 1000, "currency": "UGX", **fields}
    serializer = serializer_class(data=body)
    return serializer.is_valid(), serializer


@given(st.text(alphabet=string.digits, min_size=9, max_size=15), st.booleans())
def test_any_msisdn_of_9_to_15_digits_is_accepted_without_its_plus(digits, with_plus):
    ok, serializer = validate(PaymentCreateSerializer, payer=("+" if with_plus else "") + digits)
    assert ok, serializer.errors
    assert serializer.validated_data["payer"] == digits


@given(st.text(alphabet=string.digits, min_size=9, max_size=15))
def test_payouts_accept_the_same_msisdns_as_payee(digits):
    ok, serializer = validate(PayoutCreateSerializer, payee="+" + digits)
    assert ok, serializer.errors
    assert serializer.validated_data["payee"] == digits


@given(
    st.one_of(
        st.text(alphabet=string.digits, max_size=8),
        st.text(alphabet=string.digits, min_size=16, max_size=30),
    )
)
def test_too_short_or_too_long_msisdns_are_refused(digits):
    ok, serializer = validate(PaymentCreateSerializer, payer=digits)
    assert not ok
    assert set(serializer.errors) == {"payer"}


def _is_msisdn(text: str) -> bool:
    """The contract's rule, written out: an optional leading +, then 9 to 15 digits, with
    at most one space or dash between two of them (and nowhere else)."""
    body = text[1:] if text.startswith("+") else text
    digits = [ch for ch in body if ch in string.digits]
    if not 9 <= len(digits) <= 15 or not body or body[0] not in string.digits:
        return False
    previous = ""
    for ch in body:
        if ch in " -":
            if previous not in string.digits:
                return False  # two separators, or one first
        elif ch not in string.digits:
            return False
        previous = ch
    return previous in string.digits


@given(st.one_of(st.text(max_size=20), st.text(alphabet="+0123456789 -\n\t", max_size=22)))
def test_only_plus_digits_and_single_separators_are_accepted(text):
    ok, serializer = validate(PaymentCreateSerializer, payer=text)
    assert ok == _is_msisdn(text), (text, serializer.errors)


@pytest.mark.parametrize(
    "payer",
    [
        256700000000,
        25670000000.0,
        True,
        None,
        ["256700000000"],
        {"msisdn": "256700000000"},
        "256  700 000 000",
        "256--700-000-000",
        "256700000000\n",
        " 256700000000",
        "++256700000000",
        "+",
        "",
        "２５６７０００００００００",
    ],
)
def test_non_msisdn_payers_are_refused(payer):
    ok, serializer = validate(PaymentCreateSerializer, payer=payer)
    assert not ok
    assert set(serializer.errors) == {"payer"}
