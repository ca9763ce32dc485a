"""Concurrency, for real, on PostgreSQL: two workers, and a burst of duplicate callbacks.

Skipped on SQLite (its single writer lock hides the races these tests are about).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.utils import timezone

from gateway.audit import Actor
from gateway.models import AuditEvent
from payments.models import Payment
from payments.services import transfer_create, transfer_submit
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback
from webhooks.signing import inbound_signature

from .conftest import SUCCESS_MSISDN

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


def _run_in_threads(count: int, work) -> list[BaseException]:
    """Run ``work`` in ``count`` threads released together; returns their exceptions."""
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


def test_two_workers_submit_each_payment_exactly_once(sim, shop, merchant, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    payments = [
        transfer_create(
            model=Payment,
            tenant=shop.tenant,
            actor=Actor.system(),
            amount=Decimal("10.00") + index,
            currency="EUR",
            party=SUCCESS_MSISDN,
        )
        for index in range(36)
    ]
    Payment.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    totals: list[dict[str, int]] = []

    errors = _run_in_threads(2, lambda index: totals.append(Worker().drain()))

    assert errors == []
    for payment in payments:
        tx = sim.state.transaction(payment.mtn_reference_id)
        assert tx is not None
        assert (tx["post_count"], tx["conflict_count"]) == (1, 0), tx
    assert sim.state.request_count("POST", "/collection/v1_0/requesttopay") == len(payments)
    submitted = sum(t.get("payment.submitted", 0) for t in totals)
    assert submitted == len(payments)
    assert set(Payment.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    succeeded = Counter(
        AuditEvent.objects.filter(action="payment.succeeded").values_list("object_id", flat=True)
    )
    assert len(succeeded) == len(payments)
    assert set(succeeded.values()) == {1}
    assert MerchantDelivery.objects.count() == len(payments)
    assert set(MerchantDelivery.objects.values_list("state", flat=True)) == {"succeeded"}
    delivered = Counter(hook.headers["webhook-id"] for hook in merchant.received)
    assert len(delivered) == len(payments)
    assert set(delivered.values()) == {1}


@pytest.mark.parametrize("door", ["signed", "token"])
def test_concurrent_duplicate_callbacks_apply_once(sim, shop, live_server, settings, door):
    settings.MTN_VERIFY_CALLBACKS = True
    payment = transfer_create(
        model=Payment,
        tenant=shop.tenant,
        actor=Actor.system(),
        amount=Decimal("12.50"),
        currency="EUR",
        party=SUCCESS_MSISDN,
    )
    payment = transfer_submit(transfer=payment)
    tx = sim.state.transaction(payment.mtn_reference_id)
    assert tx["status"] == "SUCCESSFUL"
    raw = json.dumps(
        {
            "financialTransactionId": tx["financial_transaction_id"],
            "externalId": str(payment.pk),
            "amount": "12.5",
            "currency": "EUR",
            "payer": {"partyIdType": "MSISDN", "partyId": SUCCESS_MSISDN},
            "status": "SUCCESSFUL",
        }
    ).encode()
    if door == "signed":
        url = f"{live_server.url}/api/v1/webhooks/mtn"
        headers = {"X-Signature-256": inbound_signature(settings.MTN_WEBHOOK_SECRET, raw)}
    else:
        url = f"{live_server.url}/api/v1/webhooks/mtn/{payment.callback_token}"
        headers = {}
    answers: list[int] = []

    def send(index: int) -> None:
        answers.append(requests.put(url, data=raw, headers=headers, timeout=10).status_code)

    errors = _run_in_threads(10, send)

    assert errors == []
    assert answers == [200] * 10
    # A confirmation that could not reach MTN in time (the simulator's listen backlog is
    # small) is deferred; the worker confirms it, and it must still apply nothing twice.
    MtnCallback.objects.filter(outcome="deferred").update(next_attempt_at=timezone.now())
    Worker().drain()
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    assert (
        AuditEvent.objects.filter(object_id=str(payment.pk), action="payment.succeeded").count()
        == 1
    )
    assert MerchantDelivery.objects.filter(object_id=payment.pk).count() == 1
    outcomes = Counter(MtnCallback.objects.values_list("outcome", flat=True))
    assert outcomes == {"applied": 1, "duplicate": 9}
