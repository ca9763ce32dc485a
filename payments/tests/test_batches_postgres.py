"""Payout batches under real concurrency, on PostgreSQL: threads released together.

Skipped on SQLite (its single writer lock hides the races these tests are about).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.models import AuditEvent
from ledger.selectors import balance_get, ledger_verify
from payments import services
from payments.models import Payout, PayoutBatch
from payments.states import Status
from payments.tests.test_money_concurrency_postgres import client_for, run_in_threads
from webhooks.models import MerchantDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BATCHES_URL = "/api/v1/payout_batches"


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def _batch(count: int, amount: int) -> str:
    return json.dumps(
        {
            "currency": "UGX",
            "items": [
                {"payee": f"2567720{n:05d}", "amount": amount, "reference": f"r-{n}"}
                for n in range(count)
            ],
        }
    )


def test_batches_and_payouts_racing_for_one_balance_never_overdraw_it(alice, mtn):
    # 10,000 UGX; four batches of 3,000 and eight payouts of 1,000 ask for 20,000 together.
    fund_tenant(alice.tenant, "UGX", "10000")
    answers: list[tuple[str, int, str | None]] = []

    def create(index: int) -> None:
        client = client_for(alice)
        if index < 4:
            kind = "batch"
            response = client.post(
                BATCHES_URL,
                _batch(3, 1000),
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"batch-{index}",
            )
        else:
            kind = "payout"
            response = client.post(
                "/api/v1/payouts",
                json.dumps({"amount": 1000, "currency": "UGX", "payee": "256772123457"}),
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"payout-{index}",
            )
        answers.append((kind, response.status_code, response.json().get("error", {}).get("code")))

    errors = run_in_threads(12, create)

    assert errors == []
    refused = [a for a in answers if a[1] != 201]
    assert all(a[1:] == (422, "insufficient_funds") for a in refused), answers
    accepted_batches = sum(1 for a in answers if a[0] == "batch" and a[1] == 201)
    accepted_payouts = sum(1 for a in answers if a[0] == "payout" and a[1] == 201)
    reserved = Decimal(3000 * accepted_batches + 1000 * accepted_payouts)
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert balance.available >= 0
    assert (balance.available, balance.reserved) == (Decimal(10000) - reserved, reserved)
    # Accepted exactly as far as the money went: what is left cannot pay for another payout
    # of 1,000 unless every payout was accepted.
    assert balance.available < 1000 or accepted_payouts == 8
    # A refused batch left nothing behind; an accepted one all of its items.
    assert PayoutBatch.objects.count() == accepted_batches
    assert Payout.objects.filter(batch__isnull=False).count() == 3 * accepted_batches
    assert Payout.objects.filter(batch__isnull=True).count() == accepted_payouts
    assert ledger_verify() == []


def test_concurrent_replays_of_one_batch_create_it_once(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")
    statuses: list[int] = []

    def create(index: int) -> None:
        response = client_for(alice).post(
            BATCHES_URL,
            _batch(50, 100),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="one-key",
        )
        statuses.append(response.status_code)

    errors = run_in_threads(6, create)

    assert errors == []
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert PayoutBatch.objects.count() == 1
    assert Payout.objects.count() == 50
    assert balance_get(tenant_id=alice.tenant.pk, currency="UGX").reserved == Decimal(5000)


def test_items_finishing_together_complete_the_batch_exactly_once(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "1000000")
    response = client_for(alice).post(
        BATCHES_URL, _batch(48, 100), content_type="application/json", HTTP_IDEMPOTENCY_KEY="b"
    )
    batch_id = response.json()["id"]
    items = list(Payout.objects.filter(batch_id=batch_id).order_by("batch_index"))
    outcomes = {
        item.pk: random.Random(item.batch_index).choice([Status.SUCCESSFUL, Status.FAILED])
        for item in items
    }
    threads = 8

    def finish(index: int) -> None:
        # Each item is finished by two threads at once (a callback and a poll racing), so the
        # last items of the batch are finished concurrently as well.
        for item in items[index::threads] + items[(index + 1) % threads :: threads]:
            services.transfer_transition(
                transfer=item, target=outcomes[item.pk], actor=Actor.mtn(), failure_code="X"
            )

    errors = run_in_threads(threads, finish)

    assert errors == []
    batch = PayoutBatch.objects.get(pk=batch_id)
    expected = Counter(outcomes.values())
    assert batch.status == PayoutBatch.State.COMPLETED
    assert (batch.pending_count, batch.successful_count, batch.failed_count) == (
        0,
        expected[Status.SUCCESSFUL],
        expected[Status.FAILED],
    )
    assert batch.amount_succeeded == Decimal(100 * expected[Status.SUCCESSFUL])
    completed = MerchantDelivery.objects.filter(
        event_type="payout_batch.completed", object_id=batch_id
    )
    assert completed.count() == 1
    assert completed.get().payload["data"]["counts"] == {
        "PENDING": 0,
        "SUCCESSFUL": expected[Status.SUCCESSFUL],
        "FAILED": expected[Status.FAILED],
    }
    assert AuditEvent.objects.filter(action="payout_batch.completed").count() == 1
    assert MerchantDelivery.objects.filter(event_type__startswith="payout.").count() == 48
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert balance.reserved == 0
    assert balance.available == Decimal(1000000 - 100 * expected[Status.SUCCESSFUL])
    assert ledger_verify() == []
