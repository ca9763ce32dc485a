"""Refunds end to end: the real MTN client against the simulator, callbacks to a live gateway,
the worker, and the merchant's webhook endpoint."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from standardwebhooks import Webhook

from ledger.selectors import balance_get, ledger_verify
from payments.models import Payment, Refund
from payments.states import Submission
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import create, dispatch_submissions, make_due, wait_until

pytestmark = pytest.mark.e2e

REFUND_PATH = "/disbursement/v1_0/refund"
# The simulator's refund numbers: a collection from 4673312347N succeeds, and its refund then
# does what a transfer to 4673312345N does (…475: NOT_ENOUGH_FUNDS).
REFUND_FAILS_MSISDN = "46733123475"


def paid_payment(shop, **extra) -> Payment:
    """A payment the simulator makes SUCCESSFUL (polled once by the worker)."""
    response = create(shop.client, **extra)
    assert response.status_code == 201, response.content
    payment = Payment.objects.get(pk=response.json()["id"])
    if payment.status != "SUCCESSFUL":
        make_due(payment)
        Worker().drain()
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    return payment


def refund(shop, payment: Payment, body: dict, key: str):
    """Create a refund; then the dispatcher submits it, as ``run_worker`` does at once."""
    response = shop.client.post(
        f"/api/v1/payments/{payment.pk}/refunds",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    if response.status_code == 201:
        dispatch_submissions("refund")
    return response


def test_a_refund_reaches_mtn_once_and_succeeds_through_its_callback(
    sim_with_callbacks, shop, merchant
):
    sim = sim_with_callbacks
    payment = paid_payment(shop)
    before = balance_get(tenant_id=shop.tenant.pk, currency="EUR").available

    response = refund(shop, payment, {"amount": "5.00", "reason": "damaged"}, "refund-1")

    assert response.status_code == 201, response.content
    made = Refund.objects.get(pk=response.json()["id"])
    assert made.submission == Submission.SUBMITTED
    # The callback is answered once it is applied (and the refund SUCCESSFUL).
    reached = wait_until(
        lambda: MtnCallback.objects.filter(object_type="refund", outcome="applied").exists(), 10
    )
    assert reached, MtnCallback.objects.values_list("object_type", "outcome", "outcome_detail")
    assert Refund.objects.get(pk=made.pk).status == "SUCCESSFUL"
    tx = sim.state.transaction(made.mtn_reference_id)
    assert tx["post_count"] == 1
    assert tx["reference_id_to_refund"] == str(payment.mtn_reference_id)
    assert sim.state.request_count("POST", REFUND_PATH) == 1
    callback = MtnCallback.objects.get(object_type="refund")
    assert (callback.door, callback.outcome) == ("token", "applied")
    shown = shop.client.get(f"/api/v1/payments/{payment.pk}").json()
    assert shown["amount_refunded"] == "5.00"
    balance = balance_get(tenant_id=shop.tenant.pk, currency="EUR")
    assert (balance.available, balance.reserved) == (before - Decimal("5.00"), Decimal(0))

    Worker().drain()

    hooks = [h for h in merchant.received if h.json()["type"] == "refund.succeeded"]
    assert len(hooks) == 1
    event = Webhook(shop.tenant.webhook_secret).verify(hooks[0].body, hooks[0].headers)
    assert event["data"]["id"] == str(made.pk)
    assert event["data"]["payment"] == str(payment.pk)
    assert ledger_verify() == []


def test_a_refund_mtn_fails_is_polled_to_failed_and_gives_the_money_back(sim, shop, merchant):
    payment = paid_payment(shop, party=REFUND_FAILS_MSISDN)
    before = balance_get(tenant_id=shop.tenant.pk, currency="EUR").available

    response = refund(shop, payment, {}, "refund-all")
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "12.50"
    made = Refund.objects.get(pk=response.json()["id"])
    make_due(made)
    done = Worker().drain()

    assert done["refund.polled"] == 1
    made.refresh_from_db()
    assert (made.status, made.failure_code) == ("FAILED", "NOT_ENOUGH_FUNDS")
    assert balance_get(tenant_id=shop.tenant.pk, currency="EUR").available == before
    assert MerchantDelivery.objects.get(object_type="refund").event_type == "refund.failed"
    assert Payment.objects.get(pk=payment.pk).amount_refunded == 0
    # The failure left the whole payment refundable again.
    again = refund(shop, payment, {"amount": "12.50"}, "refund-again")
    assert again.status_code == 201, again.content


def test_partial_refunds_add_up_to_the_payment_and_no_further(sim, shop):
    payment = paid_payment(shop)

    first = refund(shop, payment, {"amount": "10.00"}, "part-1")
    second = refund(shop, payment, {"amount": "2.50"}, "part-2")
    third = refund(shop, payment, {"amount": "0.01"}, "part-3")

    assert (first.status_code, second.status_code) == (201, 201)
    assert third.status_code == 422
    assert third.json()["error"]["code"] == "refund_exceeds_payment"
    assert sim.state.request_count("POST", REFUND_PATH) == 2
