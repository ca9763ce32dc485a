"""The money rules under real concurrency, on PostgreSQL: threads released together.

Skipped on SQLite (its single writer lock hides the races these tests are about).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from conftest import fund_tenant
from gateway.audit import Actor
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from mtn.client import parse_transaction_status
from payments import services
from payments.models import Payment, Payout, Refund
from payments.states import Status
from payments.tests.services.conftest import mtn_status_body, paid
from webhooks.models import MerchantDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def run_in_threads(count: int, work) -> list[BaseException]:
    """Run ``work(index)`` in ``count`` threads released together; returns their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def client_for(credentials) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=credentials.api_key, HTTP_X_TENANT_ID=credentials.tenant.slug)
    return client


def test_twenty_concurrent_payouts_against_a_balance_for_ten(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")
    answers: list[tuple[int, str | None]] = []

    def create(index: int) -> None:
        response = client_for(alice).post(
            "/api/v1/payouts",
            json.dumps({"amount": 1000, "currency": "UGX", "payee": "256772123457"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"payout-{index}",
        )
        body = response.json()
        answers.append((response.status_code, body.get("error", {}).get("code")))

    errors = run_in_threads(20, create)

    assert errors == []
    assert Counter(answers) == {(201, None): 10, (422, "insufficient_funds"): 10}
    assert Payout.objects.count() == 10
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("0"), Decimal("10000"))
    assert LedgerTransaction.objects.filter(type="payout").count() == 10
    assert ledger_verify() == []


def test_concurrent_refunds_of_one_payment_never_exceed_it(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")  # money is not what limits them
    payment = paid(alice.tenant, amount="1000")
    answers: list[tuple[int, str | None]] = []

    def refund(index: int) -> None:
        response = client_for(alice).post(
            f"/api/v1/payments/{payment.pk}/refunds",
            json.dumps({"amount": 300}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"refund-{index}",
        )
        answers.append((response.status_code, response.json().get("error", {}).get("code")))

    errors = run_in_threads(10, refund)

    assert errors == []
    assert Counter(answers) == {(201, None): 3, (422, "refund_exceeds_payment"): 7}
    assert sum(Refund.objects.values_list("amount", flat=True)) == Decimal("900")
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert balance.reserved == Decimal("900")
    assert ledger_verify() == []


def test_a_payments_success_applied_twice_at_once_credits_once(alice, mtn):
    alice.tenant.collection_fee_percent = Decimal("2")
    alice.tenant.save(update_fields=["collection_fee_percent"])
    payment = services.transfer_create(
        model=Payment,
        tenant=alice.tenant,
        actor=Actor.system(),
        amount=Decimal("5000"),
        currency="UGX",
        party="256772123456",
    )
    mtn_status = parse_transaction_status(mtn_status_body(payment, "SUCCESSFUL"))
    outcomes: list[str] = []

    def apply(index: int) -> None:
        # A callback and a poll reporting the same success at the same moment.
        source = "callback:token" if index % 2 else "poll"
        fresh = Payment.objects.select_related("tenant").get(pk=payment.pk)
        result = services.transfer_apply_mtn_status(
            transfer=fresh, mtn_status=mtn_status, source=source
        )
        outcomes.append(result.outcome)

    errors = run_in_threads(6, apply)

    assert errors == []
    assert Counter(outcomes) == {"applied": 1, "unchanged": 5}
    assert Payment.objects.get(pk=payment.pk).status == Status.SUCCESSFUL
    assert LedgerTransaction.objects.filter(type="payment", source_id=payment.pk).count() == 1
    assert balance_get(tenant_id=alice.tenant.pk, currency="UGX").available == Decimal("4900")
    assert MerchantDelivery.objects.filter(object_id=payment.pk).count() == 1
    assert ledger_verify() == []
