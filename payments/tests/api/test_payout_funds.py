"""Payouts reserve their amount from the tenant's available balance when they are created."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import fund_tenant, mtn_calls
from gateway.models import IdempotencyKey
from ledger.selectors import balance_get
from payments.models import Payout
from payments.tests.helpers import PAYOUTS_URL, assert_error, payout_body, post_json

pytestmark = pytest.mark.django_db


def test_a_payout_beyond_the_balance_is_422_stored_under_its_key(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "999")

    first = post_json(alice.client, PAYOUTS_URL, payout_body(amount=1000), key="p-1")
    fund_tenant(alice.tenant, "UGX", "5000")  # money arriving later does not change the answer
    again = post_json(alice.client, PAYOUTS_URL, payout_body(amount=1000), key="p-1")

    assert_error(first, 422, "insufficient_funds")
    assert again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert not Payout.objects.exists()
    assert mtn_calls(mtn, "transfer") == []
    assert IdempotencyKey.objects.get(key="p-1").response_status == 422


def test_a_payout_within_the_balance_reserves_its_amount(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "1500")

    response = post_json(alice.client, PAYOUTS_URL, payout_body(amount=1000))

    assert response.status_code == 201, response.content
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("500"), Decimal("1000"))


def test_another_tenants_money_does_not_pay_for_a_payout(alice, bob, mtn):
    fund_tenant(bob.tenant, "UGX", "100000")

    response = post_json(alice.client, PAYOUTS_URL, payout_body(amount=1000))

    assert_error(response, 422, "insufficient_funds")
    assert not Payout.objects.exists()
