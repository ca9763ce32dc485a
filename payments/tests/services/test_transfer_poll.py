"""``transfer_poll`` and ``backoff_delay``: MTN's status endpoint, applied or asked again later."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from gateway.models import AuditEvent
from payments.models import Payment, Payout
from payments.schedule import backoff_delay
from payments.services import transfer_poll
from webhooks.models import MerchantDelivery

from .conftest import mtn_status_body, queued, status_reads, status_url, submitted


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_successful_status_is_applied(tenant, mtn, kind):
    transfer = submitted(tenant, kind=kind)
    mtn.get(status_url(transfer), json=mtn_status_body(transfer, "SUCCESSFUL"))

    result = transfer_poll(transfer=transfer)

    assert result.status == "SUCCESSFUL"
    assert result.mtn_financial_transaction_id == "987654321"
    assert result.next_attempt_at is None
    assert result.finalized_at is not None
    assert MerchantDelivery.objects.get().event_type == f"{kind}.succeeded"
    event = AuditEvent.objects.get(action=f"{kind}.succeeded")
    assert event.actor_type == "mtn"
    assert event.data["source"] == "poll"


@pytest.mark.parametrize(
    ("reason", "code", "message"),
    [
        ("APPROVAL_REJECTED", "APPROVAL_REJECTED", "APPROVAL_REJECTED"),
        ({"code": "EXPIRED", "message": "Too late."}, "EXPIRED", "Too late."),
        ({"code": "EXPIRED"}, "EXPIRED", "EXPIRED"),
        (None, "UNKNOWN", ""),
    ],
    ids=["string", "object", "object_without_message", "missing"],
)
def test_failed_status_records_the_reason(tenant, mtn, reason, code, message):
    payment = submitted(tenant)
    body = mtn_status_body(payment, "FAILED", reason=reason)
    if reason is None:
        body.pop("reason")
    mtn.get(status_url(payment), json=body)

    result = transfer_poll(transfer=payment)

    assert (result.status, result.failure_code, result.failure_message) == (
        "FAILED",
        code,
        message,
    )
    assert MerchantDelivery.objects.get().event_type == "payment.failed"


@pytest.mark.parametrize(
    "answer",
    [
        {"json": None},  # replaced by a PENDING body below
        {"status": 404, "json": {"code": "RESOURCE_NOT_FOUND", "message": "Not found."}},
        {"status": 503, "json": {"code": "SERVICE_UNAVAILABLE"}},
        {"body": requests.ConnectionError("refused")},
        {"status": 200, "body": "<html>not json</html>"},
    ],
    ids=["pending", "not_found_yet", "unavailable", "unreachable", "garbage"],
)
def test_no_final_answer_reschedules_the_poll_and_changes_nothing(tenant, mtn, answer):
    payment = submitted(tenant)
    if answer.get("json", 0) is None:
        answer = {"json": mtn_status_body(payment, "PENDING")}
    mtn.get(status_url(payment), **answer)
    events = AuditEvent.objects.count()
    before = timezone.now()

    result = transfer_poll(transfer=payment)

    assert result.status == "PENDING"
    assert result.poll_attempts == 1
    assert before + timedelta(seconds=5) <= result.next_attempt_at
    assert result.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert MerchantDelivery.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_mismatched_status_flags_for_review_and_keeps_polling(tenant, mtn):
    payment = submitted(tenant)
    mtn.get(status_url(payment), json=mtn_status_body(payment, "SUCCESSFUL", amount="1"))

    result = transfer_poll(transfer=payment)

    assert result.status == "PENDING"
    assert result.needs_review is True
    assert result.next_attempt_at > timezone.now()
    assert list(MerchantDelivery.objects.values_list("event_type", flat=True)) == [
        "payment.needs_review"
    ]
    flagged = AuditEvent.objects.get(action="payment.flagged_for_review")
    assert (flagged.data["mismatch"], flagged.data["source"]) == (["amount"], "poll")
    assert flagged.data["mtn"]["amount"] == "1"
    assert flagged.data["mtn_status"] == "SUCCESSFUL"


@pytest.mark.parametrize("state", ["queued", "final"])
def test_nothing_to_poll_makes_no_mtn_call(tenant, mtn, state):
    payment = queued(tenant)
    if state == "final":
        Payment.objects.filter(pk=payment.pk).update(status="SUCCESSFUL", submission="submitted")
        payment.refresh_from_db()

    result = transfer_poll(transfer=payment)

    assert result.status == payment.status
    assert status_reads(mtn) == []


def test_payout_is_polled_on_the_transfer_endpoint(tenant, mtn):
    payout = submitted(tenant, kind="payout")
    mtn.get(status_url(payout), json=mtn_status_body(payout, "FAILED", reason="NOT_ENOUGH_FUNDS"))

    result = transfer_poll(transfer=payout)

    assert isinstance(result, Payout)
    assert (result.status, result.failure_code) == ("FAILED", "NOT_ENOUGH_FUNDS")
    (call,) = status_reads(mtn)
    assert "/disbursement/v1_0/transfer/" in call.request.url


def test_growing_poll_delays_follow_the_contract_schedule(tenant, mtn):
    payment = submitted(tenant)
    mtn.get(status_url(payment), json=mtn_status_body(payment, "PENDING"))
    gaps = []

    for _ in range(7):
        before = timezone.now()
        payment = transfer_poll(transfer=payment)
        gaps.append(round((payment.next_attempt_at - before).total_seconds()))

    assert gaps == [5, 10, 20, 40, 60, 60, 60]
    assert len(status_reads(mtn)) == 7


def test_polls_after_ten_minutes_step_up_to_five_minutes_apart(tenant, mtn):
    payment = submitted(tenant)
    Payment.objects.filter(pk=payment.pk).update(poll_attempts=8)
    payment.refresh_from_db()
    mtn.get(status_url(payment), json=mtn_status_body(payment, "PENDING"))
    gaps = []

    # Each poll happens when it is due: move the clock by winding submitted_at back.
    age = timedelta(minutes=10, seconds=-30)
    for _ in range(5):
        Payment.objects.filter(pk=payment.pk).update(submitted_at=timezone.now() - age)
        payment.refresh_from_db()
        before = timezone.now()
        payment = transfer_poll(transfer=payment)
        gap = round((payment.next_attempt_at - before).total_seconds())
        gaps.append(gap)
        age += timedelta(seconds=gap)

    assert gaps == [60, 120, 240, 300, 300]


@pytest.mark.parametrize(
    ("attempt", "age", "seconds"),
    [
        (1, timedelta(0), 5),
        (2, timedelta(seconds=5), 10),
        (3, timedelta(seconds=15), 20),
        (4, timedelta(seconds=35), 40),
        (5, timedelta(seconds=75), 60),
        (50, timedelta(minutes=9, seconds=59), 60),
        (50, timedelta(minutes=10), 120),
        (50, timedelta(minutes=12), 240),
        (50, timedelta(minutes=16), 300),
        (6, timedelta(hours=3), 160),
        (7, timedelta(hours=3), 300),
        (0, timedelta(0), 5),
        (10_000, timedelta(days=30), 300),
    ],
)
def test_backoff_delay(attempt, age, seconds):
    assert backoff_delay(attempt, age) == timedelta(seconds=seconds)


@pytest.mark.parametrize("first_failure_at", [0, 30, 300, 590, 599, 600, 900, 7200])
def test_backoff_delays_at_most_double_and_respect_the_caps(first_failure_at):
    age = timedelta(seconds=first_failure_at)
    delays = []
    for attempt in range(1, 60):
        delay = backoff_delay(attempt, age)
        delays.append((age, delay))
        age += delay

    assert delays[0][1] == timedelta(seconds=5)
    for (_, earlier), (_, later) in zip(delays, delays[1:], strict=False):
        assert earlier <= later <= earlier * 2
    for at, delay in delays:
        assert delay <= (
            timedelta(seconds=60) if at < timedelta(minutes=10) else timedelta(minutes=5)
        )
    assert delays[-1][1] == timedelta(minutes=5)


def test_poll_request_carries_the_reference_and_no_body(tenant, mtn):
    payment = submitted(tenant)
    mtn.get(status_url(payment), json=mtn_status_body(payment, "PENDING"))

    transfer_poll(transfer=payment)

    (call,) = status_reads(mtn)
    assert call.request.url.endswith(str(payment.mtn_reference_id))
    assert call.request.body is None
