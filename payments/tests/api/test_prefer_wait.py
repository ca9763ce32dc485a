"""Creates answer at once; ``Prefer: wait=N`` waits for MTN's first answer, within a bounded
number of wait slots per process (contract: Payments, Capacity)."""

from __future__ import annotations

import threading

import pytest
import responses
from django.utils import timezone

from conftest import dispatch, fund_tenant, mtn_calls
from gateway.prefer import preferred_wait
from gateway.shares import share_slot
from payments.models import Payment, Payout, Refund
from payments.states import Submission
from payments.tests.helpers import (
    PAYMENTS_URL,
    REQUESTTOPAY_URL,
    TRANSFER_URL,
    payment_body,
    payout_body,
    post_json,
)
from payments.tests.services.conftest import paid

pytestmark = pytest.mark.django_db

PAYOUTS_URL = "/api/v1/payouts"
REJECTED = {"code": "PAYER_NOT_FOUND", "message": "Payer not found"}


def test_a_create_with_mtn_hanging_answers_without_calling_mtn(alice, mtn_http):
    hung = threading.Event()

    def hang(request):
        hung.set()
        threading.Event().wait(30)  # MTN that never answers; the create must not reach it
        return (202, {}, "")

    mtn_http.remove(responses.POST, REQUESTTOPAY_URL)
    mtn_http.add_callback(responses.POST, REQUESTTOPAY_URL, callback=hang)

    response = post_json(alice.client, PAYMENTS_URL, payment_body())

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    assert not hung.is_set()
    assert len(mtn_http.calls) == 0  # not even a token
    stored = Payment.objects.get()
    assert stored.submission == Submission.QUEUED
    assert stored.next_attempt_at <= timezone.now()  # due for the dispatcher now
    assert not response.has_header("Preference-Applied")


@pytest.mark.parametrize("url", [PAYMENTS_URL, PAYOUTS_URL])
def test_prefer_wait_answers_a_rejection_failed_with_the_header(alice, mtn_http, url):
    fund_tenant(alice.tenant, "UGX")
    target = REQUESTTOPAY_URL if url == PAYMENTS_URL else TRANSFER_URL
    mtn_http.replace(responses.POST, target, status=500, json=REJECTED)
    body = payment_body() if url == PAYMENTS_URL else payout_body()

    response = post_json(alice.client, url, body, key="w-1", HTTP_PREFER="wait=5")

    assert response.status_code == 201
    assert response["Preference-Applied"] == "wait=5"
    assert response.json()["status"] == "FAILED"
    assert response.json()["failure_reason"] == REJECTED
    # The idempotent answer is the one sent (without the header: a replay does not wait).
    again = post_json(alice.client, url, body, key="w-1", HTTP_PREFER="wait=5")
    assert again.json() == response.json()
    assert again["Idempotent-Replayed"] == "true"
    assert not again.has_header("Preference-Applied")
    assert len([c for c in mtn_http.calls if c.request.url == target]) == 1
    dispatch()  # nothing left for the dispatcher
    assert len([c for c in mtn_http.calls if c.request.url == target]) == 1


def test_prefer_wait_answers_an_acceptance_pending_and_submitted(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(), HTTP_PREFER="wait=3")

    assert response.status_code == 201
    assert response["Preference-Applied"] == "wait=3"
    assert response.json()["status"] == "PENDING"
    assert Payment.objects.get().submission == Submission.SUBMITTED
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1


def test_prefer_wait_on_a_refund(alice, mtn_http):
    payment = paid(alice.tenant, amount="5000")
    fund_tenant(alice.tenant, "UGX")

    response = post_json(
        alice.client,
        f"/api/v1/payments/{payment.pk}/refunds",
        {"amount": "100"},
        HTTP_PREFER="wait=2",
    )

    assert response.status_code == 201, response.content
    assert response["Preference-Applied"] == "wait=2"
    assert Refund.objects.get().submission == Submission.SUBMITTED


def test_past_the_wait_slots_the_create_answers_at_once_without_the_header(
    alice, mtn_http, settings
):
    settings.PREFER_WAIT_SLOTS = 1
    with share_slot("PREFER_WAIT_SLOTS") as taken:  # another request is waiting on MTN
        assert taken
        response = post_json(alice.client, PAYMENTS_URL, payment_body(), HTTP_PREFER="wait=5")

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    assert not response.has_header("Preference-Applied")
    assert len(mtn_http.calls) == 0
    assert Payment.objects.get().next_attempt_at <= timezone.now()  # the dispatcher's now
    dispatch()
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1


def test_prefer_wait_waits_at_most_n_seconds_for_mtn(alice, mtn_http, settings):
    import requests

    settings.MTN_READ_TIMEOUT = 30.0
    mtn_http.replace(responses.POST, REQUESTTOPAY_URL, body=requests.ReadTimeout("slow"))

    response = post_json(alice.client, PAYMENTS_URL, payment_body(), HTTP_PREFER="wait=1")

    assert response.json()["status"] == "PENDING"
    assert response["Preference-Applied"] == "wait=1"
    stored = Payment.objects.get()
    assert stored.may_have_landed  # the outcome is unknown: sent again, never FAILED on it
    assert stored.submission == Submission.QUEUED
    # The call was made with timeouts cut to the wait.
    (call,) = mtn_calls(mtn_http, "requesttopay")
    assert call.request.req_kwargs["timeout"][1] <= 1.0


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("wait=5", 5),
        ("wait=10", 10),
        ("wait=60", 10),
        ("respond-async, wait=3", 3),
        ("wait=4; foo=bar", 4),
        ('wait="2"', 2),
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=abc", None),
        ("return=minimal", None),
        ("", None),
    ],
)
def test_prefer_header_parsing(header, wait):
    assert preferred_wait({"Prefer": header} if header else {}) == wait


def test_a_payout_unchanged_is_left_to_the_dispatcher(alice, mtn_http):
    fund_tenant(alice.tenant, "UGX")

    response = post_json(alice.client, PAYOUTS_URL, payout_body())

    assert response.json()["status"] == "PENDING"
    assert Payout.objects.get().submission == Submission.QUEUED
    assert mtn_calls(mtn_http, "transfer") == []
