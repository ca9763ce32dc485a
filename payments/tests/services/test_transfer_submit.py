"""``transfer_submit``: one MTN reference, 202/409 = submitted, refusals fail, outages wait."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from gateway.models import AuditEvent
from payments.reasons import transfer_failure_message
from payments.services import transfer_submit
from payments.states import Submission
from webhooks.models import MerchantDelivery

from .conftest import REQUESTTOPAY, TRANSFER, queued, submits


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_accepted_submission_is_submitted_and_polled_later(tenant, mtn, kind):
    transfer = queued(tenant, kind=kind)

    result = transfer_submit(transfer=transfer)

    assert result.status == "PENDING"
    assert result.submission == Submission.SUBMITTED
    assert result.submit_attempts == 1
    assert result.next_attempt_at - result.submitted_at == timedelta(seconds=60)
    (call,) = submits(mtn)
    assert call.request.url == (REQUESTTOPAY if kind == "payment" else TRANSFER)
    assert call.request.headers["X-Reference-Id"] == str(transfer.mtn_reference_id)
    assert call.request.headers["X-Target-Environment"] == "sandbox"
    assert "X-Callback-Url" not in call.request.headers
    body = json.loads(call.request.body)
    assert body["externalId"] == str(transfer.pk)
    assert body["amount"] == "1000"
    assert body["currency"] == "UGX"
    party = "payer" if kind == "payment" else "payee"
    assert body[party] == {"partyIdType": "MSISDN", "partyId": "256772123456"}
    assert MerchantDelivery.objects.count() == 0


def test_conflict_for_our_reference_counts_as_submitted(tenant, mtn):
    mtn.replace(
        responses.POST,
        REQUESTTOPAY,
        status=409,
        json={"code": "RESOURCE_ALREADY_EXIST", "message": "Duplicated reference id."},
    )
    payment = queued(tenant)

    result = transfer_submit(transfer=payment)

    assert result.submission == Submission.SUBMITTED
    assert result.status == "PENDING"
    event = AuditEvent.objects.get(action="payment.submitted")
    assert event.data["already_existed"] is True


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"code": "NOT_ALLOWED_TARGET_ENVIRONMENT", "message": "Forbidden."}),
        (500, {"code": "INVALID_CURRENCY", "message": "Currency not supported."}),
        (500, {"code": "INVALID_CALLBACK_URL_HOST", "message": "Host mismatch."}),
        (500, {"code": "PAYER_NOT_FOUND", "message": "No such payer."}),
        (400, {"code": "BAD_REQUEST", "message": "amount must be a string."}),
    ],
)
@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_permanent_rejection_fails_with_mtns_code(tenant, mtn, status, body, kind):
    url = REQUESTTOPAY if kind == "payment" else TRANSFER
    mtn.replace(responses.POST, url, status=status, json=body)
    transfer = queued(tenant, kind=kind)

    result = transfer_submit(transfer=transfer)

    assert result.status == "FAILED"
    assert result.submission == Submission.REJECTED
    assert result.failure_code == body["code"]
    assert result.failure_message == body["message"]
    assert result.next_attempt_at is None
    assert result.finalized_at is not None
    assert body["code"] in result.last_error
    delivery = MerchantDelivery.objects.get()
    assert delivery.event_type == f"{kind}.failed"
    # MTN's message as stored; the webhook shows the sentence made of it (payments.reasons).
    assert delivery.payload["data"]["failure_reason"] == {
        "code": body["code"],
        "message": transfer_failure_message(result),
    }
    assert len(submits(mtn)) == 1

    again = transfer_submit(transfer=result)  # a rejected payment is never sent again

    assert again.status == "FAILED"
    assert len(submits(mtn)) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503, "json": {"code": "SERVICE_UNAVAILABLE", "message": "Try later."}},
        {"status": 500, "json": {"code": "INTERNAL_PROCESSING_ERROR", "message": "Oops."}},
        {"status": 502, "body": "<html>Bad gateway</html>"},
        {"status": 429, "json": {"statusCode": 429, "message": "Rate limit is exceeded."}},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.ReadTimeout("slow")},
    ],
    ids=["503", "500_ipe", "502_html", "429", "refused", "timeout"],
)
def test_outage_leaves_it_pending_and_due_within_five_seconds(tenant, mtn, answer):
    mtn.replace(responses.POST, REQUESTTOPAY, **answer)
    payment = queued(tenant)
    before = timezone.now()

    result = transfer_submit(transfer=payment)

    assert result.status == "PENDING"
    assert result.submission == Submission.QUEUED
    assert result.submit_attempts == 1
    assert before < result.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert result.last_error
    assert MerchantDelivery.objects.count() == 0
    deferred = AuditEvent.objects.get(action="payment.submit_deferred")
    assert deferred.data["attempt"] == 1


def test_retry_after_longer_than_the_schedule_is_honoured(tenant, mtn):
    mtn.replace(
        responses.POST,
        REQUESTTOPAY,
        status=429,
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 42 seconds."},
        headers={"Retry-After": "42"},
    )
    payment = queued(tenant)
    before = timezone.now()

    result = transfer_submit(transfer=payment)

    assert result.next_attempt_at - before >= timedelta(seconds=42)
    assert result.next_attempt_at - timezone.now() <= timedelta(seconds=42)


def test_submitting_twice_calls_mtn_once(tenant, mtn):
    payment = queued(tenant)
    first = transfer_submit(transfer=payment)

    second = transfer_submit(transfer=first)

    assert second.submission == Submission.SUBMITTED
    assert len(submits(mtn)) == 1


def test_stale_copy_of_a_submitted_payment_is_not_resubmitted(tenant, mtn):
    payment = queued(tenant)
    stale = type(payment).objects.get(pk=payment.pk)
    transfer_submit(transfer=payment)
    mtn.replace(responses.POST, REQUESTTOPAY, status=409, json={"code": "RESOURCE_ALREADY_EXIST"})

    result = transfer_submit(transfer=stale)  # a worker holding an old copy

    assert result.submission == Submission.SUBMITTED
    assert result.submit_attempts == 1
    assert AuditEvent.objects.filter(action="payment.submitted").count() == 1


def test_every_retry_uses_the_same_reference(tenant, mtn):
    mtn.replace(responses.POST, REQUESTTOPAY, status=503, json={"code": "SERVICE_UNAVAILABLE"})
    payment = queued(tenant)
    transfer_submit(transfer=payment)
    mtn.replace(responses.POST, REQUESTTOPAY, status=202)
    type(payment).objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now())

    transfer_submit(transfer=type(payment).objects.get(pk=payment.pk))

    references = {c.request.headers["X-Reference-Id"] for c in submits(mtn)}
    assert references == {str(payment.mtn_reference_id)}
    assert len(submits(mtn)) == 2


def test_callback_url_is_sent_when_configured(tenant, mtn, settings):
    settings.MTN_CALLBACK_URL = "https://gw.example.com"
    payment = queued(tenant)

    transfer_submit(transfer=payment)

    (call,) = submits(mtn)
    assert call.request.headers["X-Callback-Url"] == (
        f"https://gw.example.com/api/v1/webhooks/mtn/{payment.callback_token}"
    )


# --- a request still submitting while a callback already settled the payment ----------------


def _settled_while_submitting(tenant):
    """A payment whose first POST landed (answer lost) and whose callback already applied,
    and the submitting request's own, now stale, copy of it."""
    from gateway.audit import Actor
    from payments.services import transfer_transition

    payment = queued(tenant)
    stale = type(payment).objects.get(pk=payment.pk)
    transfer_transition(transfer=payment, target="SUCCESSFUL", actor=Actor.mtn())
    return stale


def test_retryable_error_after_a_callback_settled_the_payment_schedules_nothing(tenant, mtn):
    from shell.worker import Worker

    stale = _settled_while_submitting(tenant)
    mtn.replace(responses.POST, REQUESTTOPAY, status=503, json={"code": "SERVICE_UNAVAILABLE"})

    result = transfer_submit(transfer=stale)

    assert result.status == "SUCCESSFUL"
    current = type(stale).objects.get(pk=stale.pk)
    assert current.status == "SUCCESSFUL"
    assert current.next_attempt_at is None  # nothing left for the worker to do
    assert not [key for key in Worker().run_once() if key.startswith("payment.")]
    assert len(submits(mtn)) == 1
    assert MerchantDelivery.objects.count() == 1


def test_permanent_error_after_a_callback_settled_the_payment_changes_nothing(tenant, mtn):
    stale = _settled_while_submitting(tenant)
    mtn.replace(
        responses.POST, REQUESTTOPAY, status=400, json={"code": "BAD_REQUEST", "message": "No."}
    )

    result = transfer_submit(transfer=stale)

    assert result.status == "SUCCESSFUL"
    current = type(stale).objects.get(pk=stale.pk)
    assert (current.status, current.failure_code) == ("SUCCESSFUL", "")
    assert MerchantDelivery.objects.get().event_type == "payment.succeeded"
