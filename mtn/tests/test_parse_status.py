"""parse_transaction_status: one parser for status responses and callback bodies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtn.client import parse_transaction_status


def test_reason_as_plain_string_like_live_mtn():
    status = parse_transaction_status(
        {"status": "FAILED", "reason": "APPROVAL_REJECTED", "amount": "100", "currency": "EUR"}
    )

    assert status.status == "FAILED"
    assert status.reason_code == "APPROVAL_REJECTED"
    assert status.reason_message is None
    assert status.is_final


def test_reason_as_object_like_the_spec():
    status = parse_transaction_status(
        {
            "status": "FAILED",
            "reason": {"code": "PAYER_NOT_FOUND", "message": "The payer could not be found."},
        }
    )

    assert status.reason_code == "PAYER_NOT_FOUND"
    assert status.reason_message == "The payer could not be found."


@pytest.mark.parametrize("raw", ["CREATED", "PENDING", "ONGOING", "", None, 7, "weird"])
def test_created_and_unknown_statuses_are_pending(raw):
    status = parse_transaction_status({"status": raw})

    assert status.status == "PENDING"
    assert status.is_final is False


def test_successful_lowercase_is_successful_and_keeps_raw():
    status = parse_transaction_status({"status": "successful"})

    assert status.status == "SUCCESSFUL"
    assert status.raw_status == "successful"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("12.5", Decimal("12.5")),
        (12.5, Decimal("12.5")),
        (1000, Decimal(1000)),
        ("abc", None),
        (None, None),
        (True, None),
        ({"x": 1}, None),
        ("NaN", None),
    ],
)
def test_amount_accepts_string_or_number(amount, expected):
    assert parse_transaction_status({"amount": amount}).amount == expected


def test_full_callback_body_for_a_transfer():
    body = {
        "financialTransactionId": "23503452",
        "externalId": "po_9",
        "amount": "50",
        "currency": "EUR",
        "payee": {"partyIdType": "MSISDN", "partyId": "46733123453"},
        "payerMessage": "Salary",
        "payeeNote": "Salary",
        "status": "SUCCESSFUL",
    }

    status = parse_transaction_status(body)

    assert status.external_id == "po_9"
    assert status.financial_transaction_id == "23503452"
    assert status.party_id == "46733123453"
    assert status.currency == "EUR"
    assert status.raw == body
    assert status.reason_code is None


def test_non_dict_body_raises_value_error():
    with pytest.raises(ValueError, match="JSON object"):
        parse_transaction_status(["FAILED"])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(
    [
        "status",
        "reason",
        "amount",
        "currency",
        "externalId",
        "financialTransactionId",
        "payer",
        "payee",
        "other",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_values, max_size=9))
def test_parser_never_raises_on_odd_field_types(body):
    status = parse_transaction_status(body)

    assert status.status in {"PENDING", "SUCCESSFUL", "FAILED"}
