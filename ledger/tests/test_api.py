"""GET /api/v1/balance and /api/v1/balance/transactions, exactly as the contract says."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.audit import Actor
from ledger.models import LedgerTransaction
from ledger.services import (
    ledger_adjust,
    ledger_payment_settled,
    ledger_release,
    ledger_reserve,
    ledger_settle,
)
from tenants import key_cache

pytestmark = pytest.mark.django_db

BALANCE = "/api/v1/balance"
TRANSACTIONS = "/api/v1/balance/transactions"
CSV_HEADER = "id,type,currency,amount,fee,net,source_object,source_id,created_at"


def assert_validation_error(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["fields"]


def pay(tenant_id, amount: str, fee: str = "0", currency: str = "UGX") -> LedgerTransaction:
    return ledger_payment_settled(
        tenant_id=tenant_id,
        currency=currency,
        amount=Decimal(amount),
        fee=Decimal(fee),
        source_id=uuid.uuid4(),
    )


def reserve(tenant_id, amount: str, source_object: str = "payout", currency: str = "UGX"):
    source_id = uuid.uuid4()
    ledger_reserve(
        tenant_id=tenant_id,
        currency=currency,
        amount=Decimal(amount),
        source_object=source_object,
        source_id=source_id,
    )
    return source_id


@pytest.fixture
def history(tenant):
    """A payment with a fee, a payout that failed, one that succeeded, a refund in flight."""
    pay(tenant.pk, "10000", fee="150")
    failed = reserve(tenant.pk, "500")
    ledger_release(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(500),
        source_object="payout",
        source_id=failed,
    )
    sent = reserve(tenant.pk, "1000")
    ledger_settle(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(1000),
        source_object="payout",
        source_id=sent,
    )
    reserve(tenant.pk, "350", source_object="refund")
    ledger_adjust(
        tenant_id=tenant.pk,
        currency="EUR",
        amount=Decimal("12.5"),
        reason="pre-funding",
        actor=Actor.system(),
    )
    return tenant


# --- GET /balance ----------------------------------------------------------------------------


def test_a_new_tenant_has_no_balances(api_client):
    response = api_client.get(BALANCE)

    assert response.status_code == 200
    assert response.json() == {"balances": []}


def test_balance_shows_available_and_reserved_per_currency(api_client, history):
    response = api_client.get(BALANCE)

    assert response.status_code == 200
    assert response.json() == {
        "balances": [
            {"currency": "EUR", "available": "12.50", "reserved": "0.00"},
            {"currency": "UGX", "available": "8500", "reserved": "350"},
        ]
    }


def test_balance_refuses_an_unknown_query_parameter(api_client, history):
    assert_validation_error(api_client.get(BALANCE, {"currency": "UGX"}), "currency")


def test_balance_of_another_tenant_is_never_shown(history, bob):
    pay(bob.tenant.pk, "7")

    response = bob.client.get(BALANCE)

    assert response.json() == {"balances": [{"currency": "UGX", "available": "7", "reserved": "0"}]}


def test_balance_needs_an_api_key(history):
    response = APIClient().get(BALANCE, HTTP_X_TENANT_ID=history.slug)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_another_tenants_key_gets_401_not_the_balance(history, bob):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=bob.api_key, HTTP_X_TENANT_ID=history.slug)

    response = client.get(BALANCE)

    assert response.status_code == 401


# --- GET /balance/transactions ---------------------------------------------------------------


def test_transactions_are_the_statement_newest_first(api_client, history):
    response = api_client.get(TRANSACTIONS)

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    rows = [
        (r["type"], r["currency"], r["amount"], r["fee"], r["net"], r["source"]["object"])
        for r in body["results"]
    ]
    assert rows == [
        ("adjustment", "EUR", "12.50", "0.00", "12.50", "adjustment"),
        ("refund", "UGX", "-350", "0", "-350", "refund"),
        ("payout", "UGX", "-1000", "0", "-1000", "payout"),
        ("payout_failure", "UGX", "500", "0", "500", "payout"),
        ("payout", "UGX", "-500", "0", "-500", "payout"),
        ("payment", "UGX", "10000", "150", "9850", "payment"),
    ]
    first = body["results"][0]
    assert set(first) == {"id", "type", "currency", "amount", "fee", "net", "source", "created_at"}
    assert first["created_at"].endswith("Z")
    # The statement's nets add up to the available balance (settlements are not listed).
    ugx = [Decimal(r["net"]) for r in body["results"] if r["currency"] == "UGX"]
    assert sum(ugx) == Decimal(api_client.get(BALANCE).json()["balances"][1]["available"])


def test_transactions_of_another_tenant_are_never_listed(history, bob):
    response = bob.client.get(TRANSACTIONS)

    assert response.json() == {"results": [], "next": None}
    csv_response = bob.client.get(TRANSACTIONS, {"format": "csv"})
    assert b"".join(csv_response.streaming_content).decode().strip() == CSV_HEADER


@pytest.mark.parametrize(
    ("params", "types"),
    [
        ({"currency": "EUR"}, ["adjustment"]),
        ({"type": "payout"}, ["payout", "payout"]),
        ({"type": "payout_failure"}, ["payout_failure"]),
        ({"currency": "UGX", "type": "refund"}, ["refund"]),
        ({"currency": "GHS"}, []),
    ],
)
def test_transactions_filter_by_currency_and_type(api_client, history, params, types):
    response = api_client.get(TRANSACTIONS, params)

    assert [row["type"] for row in response.json()["results"]] == types


def test_transactions_filter_by_creation_time(api_client, history):
    middle = LedgerTransaction.objects.get(type="payout_failure").created_at
    later = middle + timedelta(microseconds=1)

    after = api_client.get(TRANSACTIONS, {"created_after": middle.isoformat()}).json()
    before = api_client.get(TRANSACTIONS, {"created_before": later.isoformat()}).json()

    assert [r["type"] for r in after["results"]][-1] == "payout_failure"  # inclusive
    assert [r["type"] for r in before["results"]] == ["payout_failure", "payout", "payment"]
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert api_client.get(TRANSACTIONS, {"created_after": future}).json()["results"] == []


def test_transactions_paginate_with_a_cursor(api_client, history):
    seen: list[str] = []
    params: dict[str, str] = {"limit": "4"}
    for _ in range(5):
        body = api_client.get(TRANSACTIONS, params).json()
        seen.extend(row["id"] for row in body["results"])
        if body["next"] is None:
            break
        query = parse_qs(urlsplit(body["next"]).query)
        assert query["limit"] == ["4"]
        params = {"limit": "4", "cursor": query["cursor"][0]}

    everything = [row["id"] for row in api_client.get(TRANSACTIONS).json()["results"]]
    assert seen == everything
    assert len(seen) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "ugx"}, "currency"),
        ({"type": "payout_settled"}, "type"),
        ({"type": "nope"}, "type"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-01T00:00:00Z"}, "created_before"),
        ({"created_after": "0001-01-01T00:00:00+14:00"}, "created_after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"format": "xml"}, "format"),
        ({"status": "PENDING"}, "status"),
        ({"page": "2"}, "page"),
    ],
)
def test_a_malformed_or_unknown_parameter_is_a_validation_error(api_client, history, params, field):
    assert_validation_error(api_client.get(TRANSACTIONS, params), field)


def test_csv_has_every_matching_row_without_pagination(api_client, history):
    for _ in range(3):
        pay(history.pk, "1")

    response = api_client.get(TRANSACTIONS, {"format": "csv", "limit": "2", "currency": "UGX"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert lines[0] == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 8  # 5 UGX rows of the history and 3 payments, no EUR row
    json_rows = api_client.get(TRANSACTIONS, {"currency": "UGX"}).json()["results"]
    assert [row["id"] for row in rows] == [row["id"] for row in json_rows]
    payment = rows[-1]
    assert (payment["type"], payment["amount"], payment["fee"], payment["net"]) == (
        "payment",
        "10000",
        "150",
        "9850",
    )
    assert payment["source_object"] == "payment"
    assert uuid.UUID(payment["source_id"])
    assert payment["created_at"].endswith("Z")


def test_csv_errors_are_json(api_client, history):
    response = api_client.get(TRANSACTIONS, {"format": "csv", "type": "bogus"})

    assert response["Content-Type"] == "application/json"
    assert_validation_error(response, "type")


# --- query budgets ---------------------------------------------------------------------------


def _statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = run()
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries]


def test_balance_is_two_reads(api_client, history):
    api_client.get(BALANCE)  # the API key's last_used_at is refreshed once

    sqls = _statements(lambda: api_client.get(BALANCE))

    # The API key (unless the shared key cache holds it, tenants/key_cache.py), the accounts.
    assert len(sqls) == 1 + (0 if key_cache.in_use() else 1), sqls
    assert all(sql.startswith("SELECT") for sql in sqls)


def test_transactions_cost_the_same_for_one_row_and_a_full_page(api_client, history):
    api_client.get(TRANSACTIONS)
    one_row = _statements(lambda: api_client.get(TRANSACTIONS, {"limit": "1"}))
    full_page = _statements(lambda: api_client.get(TRANSACTIONS, {"limit": "200"}))
    csv_export = _statements(lambda: api_client.get(TRANSACTIONS, {"format": "csv"}))

    # The API key (unless the shared key cache holds it, tenants/key_cache.py), one page.
    auth = 0 if key_cache.in_use() else 1
    assert len(one_row) == len(full_page) == 1 + auth, full_page
    assert len(csv_export) <= 2 + auth, csv_export
