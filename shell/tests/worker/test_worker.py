"""The worker: due rows claimed with leases, submissions retried on the contract's schedule,
payments polled, callbacks confirmed, webhooks delivered; ``run_worker --once`` prints JSON.

MTN is mocked with ``responses``; the clock is moved by rewriting ``next_attempt_at``.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from payments import services
from payments.models import Payment, Payout
from payments.services import in_request_lease, transfer_create
from payments.states import Submission
from shell.worker import LEASE, Worker, claim_due
from webhooks.models import MerchantDelivery

BASE = "https://mtn.test"
REQUESTTOPAY = f"{BASE}/collection/v1_0/requesttopay"
TRANSFER = f"{BASE}/disbursement/v1_0/transfer"
REFUND = f"{BASE}/disbursement/v1_0/refund"


def create(tenant, model=Payment, amount="1000"):
    if model is Payout:
        fund_tenant(tenant, "UGX", amount)  # a payout reserves its amount from the balance
    return transfer_create(
        model=model,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(amount),
        currency="UGX",
        party="256772123456",
    )


def due(obj) -> None:
    type(obj).objects.filter(pk=obj.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def posts(mock, url=REQUESTTOPAY) -> int:
    return sum(1 for c in mock.calls if c.request.method == "POST" and c.request.url == url)


def status_body(transfer, status: str) -> dict:
    party = "payer" if transfer.kind == "payment" else "payee"
    body = {
        "amount": "1000",
        "currency": "UGX",
        "externalId": str(transfer.pk),
        party: {"partyIdType": "MSISDN", "partyId": "256772123456"},
        "status": status,
    }
    if status == "SUCCESSFUL":
        body["financialTransactionId"] = "42"
    return body


# --- claiming ---------------------------------------------------------------------------------


def test_claim_due_takes_due_rows_and_leases_them(tenant):
    due_one, due_two, later = create(tenant), create(tenant), create(tenant)
    due(due_one)
    due(due_two)
    Payment.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(1))
    now = timezone.now()

    claimed = claim_due(Payment, now=now)

    assert {p.pk for p in claimed} == {due_one.pk, due_two.pk}
    assert all(p.next_attempt_at == now + LEASE for p in claimed)
    assert claim_due(Payment, now=now) == []  # leased: nobody else takes them
    later.refresh_from_db()
    assert later.next_attempt_at > now


def test_claim_due_respects_the_batch_size_oldest_first(tenant):
    payments = [create(tenant) for _ in range(5)]
    for offset, payment in enumerate(payments):
        Payment.objects.filter(pk=payment.pk).update(
            next_attempt_at=timezone.now() - timedelta(minutes=10 - offset)
        )

    claimed = claim_due(Payment, now=timezone.now(), limit=2)

    assert [p.pk for p in sorted(claimed, key=lambda p: payments.index(p))] == [
        payments[0].pk,
        payments[1].pk,
    ]


def test_rows_with_nothing_due_are_never_claimed(tenant):
    payment = create(tenant)
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=None)

    assert claim_due(Payment, now=timezone.now() + timedelta(days=365)) == []


# --- submissions ------------------------------------------------------------------------------


def test_a_created_payment_is_due_at_once_and_the_worker_submits_it(tenant, mtn):
    payment = create(tenant)
    assert payment.next_attempt_at <= timezone.now()
    assert posts(mtn) == 0  # creating calls nobody

    assert Worker().run_once() == {"payment.submitted": 1}
    assert posts(mtn) == 1
    assert Payment.objects.get(pk=payment.pk).submission == Submission.SUBMITTED


def test_a_payment_owned_by_its_request_waits_until_the_lease_ends(tenant, mtn):
    # Prefer: wait: the request submits it itself and holds a lease meanwhile.
    payment = transfer_create(
        model=Payment,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal("1000"),
        currency="UGX",
        party="256772123456",
        owned=True,
    )
    assert payment.next_attempt_at - payment.created_at >= in_request_lease() - timedelta(seconds=1)

    assert Worker().run_once() == {}
    assert posts(mtn) == 0

    # The request's process died: once its lease has passed, the worker submits.
    due(payment)
    assert Worker().run_once() == {"payment.submitted": 1}
    assert posts(mtn) == 1
    assert Payment.objects.get(pk=payment.pk).submission == Submission.SUBMITTED


def test_worker_retries_a_queued_submission_on_the_contract_schedule(tenant, mtn):
    mtn.replace(responses.POST, REQUESTTOPAY, status=503, json={"code": "SERVICE_UNAVAILABLE"})
    payment = create(tenant)
    gaps = []

    for _ in range(7):
        due(payment)
        before = timezone.now()
        assert Worker().run_once() == {"payment.submitted": 1}
        payment.refresh_from_db()
        gaps.append(round((payment.next_attempt_at - before).total_seconds()))

    assert gaps == [5, 10, 20, 40, 60, 60, 60]
    assert posts(mtn) == 7  # one try per round: the worker's schedule is the retry policy
    assert payment.submit_attempts == 7
    assert payment.submission == Submission.QUEUED

    mtn.replace(responses.POST, REQUESTTOPAY, status=202)
    due(payment)
    Worker().run_once()

    payment.refresh_from_db()
    assert payment.submission == Submission.SUBMITTED
    assert payment.status == "PENDING"
    references = {
        c.request.headers["X-Reference-Id"] for c in mtn.calls if c.request.url == REQUESTTOPAY
    }
    assert references == {str(payment.mtn_reference_id)}


def test_worker_submits_payouts_through_transfer(tenant, mtn):
    payout = create(tenant, model=Payout)
    due(payout)

    assert Worker().run_once() == {"payout.submitted": 1}

    assert posts(mtn, TRANSFER) == 1
    assert posts(mtn, REQUESTTOPAY) == 0
    assert Payout.objects.get(pk=payout.pk).submission == Submission.SUBMITTED


def test_worker_submits_refunds_and_polls_them_to_their_final_state(tenant, mtn):
    payment = create(tenant)
    services.transfer_transition(transfer=payment, target="SUCCESSFUL", actor=Actor.mtn())
    refund = services.refund_create(
        payment=Payment.objects.select_related("tenant").get(pk=payment.pk), actor=Actor.system()
    )
    due(refund)

    assert Worker().run_once()["refund.submitted"] == 1
    assert posts(mtn, REFUND) == 1
    mtn.get(f"{REFUND}/{refund.mtn_reference_id}", json=status_body(refund, "SUCCESSFUL"))
    due(refund)
    assert Worker().run_once()["refund.polled"] == 1

    refund.refresh_from_db()
    assert refund.status == "SUCCESSFUL"
    assert refund.next_attempt_at is None
    assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("1000")
    assert MerchantDelivery.objects.filter(object_id=refund.pk).get().event_type == (
        "refund.succeeded"
    )


def test_permanent_rejection_by_the_worker_fails_the_payment(tenant, mtn):
    mtn.replace(
        responses.POST,
        REQUESTTOPAY,
        status=500,
        json={"code": "NOT_ALLOWED_TARGET_ENVIRONMENT", "message": "Forbidden."},
    )
    payment = create(tenant)
    due(payment)

    Worker().drain()

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("FAILED", "NOT_ALLOWED_TARGET_ENVIRONMENT")
    assert payment.next_attempt_at is None
    assert posts(mtn) == 1


# --- polling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [(Payment, "collection/v1_0/requesttopay"), (Payout, "disbursement/v1_0/transfer")],
)
def test_worker_polls_a_stale_pending_payment_to_its_final_state(tenant, mtn, model, path):
    transfer = create(tenant, model=model)
    due(transfer)
    Worker().run_once()
    transfer.refresh_from_db()
    assert transfer.submission == Submission.SUBMITTED
    url = f"{BASE}/{path}/{transfer.mtn_reference_id}"
    mtn.get(url, json=status_body(transfer, "PENDING"))

    due(transfer)
    assert Worker().run_once() == {f"{transfer.kind}.polled": 1}
    transfer.refresh_from_db()
    assert transfer.status == "PENDING"
    assert transfer.poll_attempts == 1

    mtn.replace(responses.GET, url, json=status_body(transfer, "SUCCESSFUL"))
    due(transfer)
    Worker().run_once()

    transfer.refresh_from_db()
    assert transfer.status == "SUCCESSFUL"
    assert transfer.next_attempt_at is None
    assert MerchantDelivery.objects.filter(object_id=transfer.pk).count() == 1


# --- robustness -------------------------------------------------------------------------------


def test_one_failing_row_does_not_stop_the_others(tenant, mtn, monkeypatch):
    bad, good = create(tenant), create(tenant)
    due(bad)
    due(good)
    real_submit = services.transfer_submit_job

    def submit(*, transfer, **kwargs):
        if transfer.pk == bad.pk:
            raise RuntimeError("a bug in one row")
        return (yield from real_submit(transfer=transfer, **kwargs))

    monkeypatch.setattr("shell.worker.transfer_submit_job", submit)

    done = Worker().run_once()

    assert done == {"payment.error": 1, "payment.submitted": 1}
    assert Payment.objects.get(pk=good.pk).submission == Submission.SUBMITTED
    bad.refresh_from_db()
    assert bad.submission == Submission.QUEUED
    assert bad.next_attempt_at > timezone.now()  # its lease runs out, then it is retried


def test_stop_event_ends_the_round(tenant, mtn):
    for _ in range(3):
        due(create(tenant))
    worker = Worker()
    worker.stop_event.set()

    assert worker.run_once() == {}
    assert posts(mtn) == 0


def test_drain_stops_when_nothing_is_due(tenant, mtn):
    for _ in range(3):
        due(create(tenant))

    done = Worker().drain()

    assert done == {"payment.submitted": 3}
    assert Worker().drain() == {}


def test_run_worker_once_prints_json_counts(tenant, mtn):
    payment = create(tenant)
    due(payment)
    out = io.StringIO()

    call_command("run_worker", "--once", stdout=out)

    assert json.loads(out.getvalue()) == {"done": {"payment.submitted": 1}}
    assert posts(mtn) == 1


# --- fairness between tenants on one MTN account ----------------------------------------------


def test_a_claim_takes_tenants_in_turn_behind_one_tenants_backlog(
    tenant, other_tenant, monkeypatch
):
    from shell import worker as worker_module

    monkeypatch.setattr(worker_module, "CANDIDATES", 10)  # a backlog past one query's look
    backlog = [create(tenant) for _ in range(25)]
    old = timezone.now() - timedelta(minutes=5)
    Payment.objects.filter(pk__in=[p.pk for p in backlog]).update(next_attempt_at=old)
    single = create(other_tenant)  # due later than all of the backlog

    claimed = worker_module.claim_transfers(Payment, now=timezone.now(), budget=lambda _: 4)

    assert len(claimed) == 4  # the account's budget
    assert single.pk in {p.pk for p in claimed}  # not behind the other tenant's 25
    assert sum(p.tenant_id == tenant.pk for p in claimed) == 3
