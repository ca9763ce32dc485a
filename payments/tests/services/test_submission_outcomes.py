"""Submission outcomes by MTN's word (issue 16, point 1): every row of SUBMISSION_OUTCOMES,
every kind of error mapped to its row, and MTN's status endpoint deciding after an attempt
that may have landed."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from django.core.cache import cache
from django.utils import timezone

from gateway.models import AuditEvent
from mtn.accounts import forget_clients
from mtn.errors import MtnError
from payments.services import SUBMISSION_OUTCOMES, transfer_submit
from payments.services.submit import Answer, Next, answer_of, transfer_check_job
from payments.states import Submission
from webhooks.models import MerchantDelivery

from .conftest import (
    MTN_BASE,
    TRANSFER,
    mtn_status_body,
    queued,
    status_url,
    submits,
)

TOKEN = f"{MTN_BASE}/disbursement/token/"

# One MTN answer of each kind, as ``responses`` arguments for the transfer POST (or, for
# "token_*", for the token endpoint).
EXAMPLES: dict[str, tuple[Answer, dict]] = {
    "202": (Answer.ACCEPTED, {"status": 202}),
    "409_own_reference": (
        Answer.DUPLICATE,
        {"status": 409, "json": {"code": "RESOURCE_ALREADY_EXIST", "message": "Duplicated."}},
    ),
    "read_timeout": (Answer.UNKNOWN, {"body": requests.ReadTimeout("slow")}),
    "connection_reset": (Answer.UNKNOWN, {"body": requests.ConnectionError("reset")}),
    "500_unknown": (Answer.UNKNOWN, {"status": 500, "body": ""}),
    "503_service_unavailable": (
        Answer.UNKNOWN,
        {"status": 503, "json": {"code": "SERVICE_UNAVAILABLE", "message": "Later."}},
    ),
    "500_internal_processing_error": (
        Answer.UNKNOWN,
        {"status": 500, "json": {"code": "INTERNAL_PROCESSING_ERROR", "message": "Oops."}},
    ),
    "502_html": (Answer.UNKNOWN, {"status": 502, "body": "<html>Bad gateway</html>"}),
    "connect_timeout": (Answer.NOT_SENT, {"body": requests.ConnectTimeout("no route")}),
    "429": (
        Answer.NOT_SENT,
        {"status": 429, "json": {"statusCode": 429, "message": "Rate limit is exceeded."}},
    ),
    "403_credential_rotation": (
        Answer.REFUSED,
        {"status": 403, "json": {"statusCode": 403, "message": "Forbidden."}},
    ),
    "400": (Answer.REFUSED, {"status": 400, "json": {"code": "BAD_REQUEST", "message": "No."}}),
    "500_invalid_callback_url_host": (
        Answer.REFUSED,
        {"status": 500, "json": {"code": "INVALID_CALLBACK_URL_HOST", "message": "Host."}},
    ),
    "500_payee_not_found": (
        Answer.REFUSED,
        {"status": 500, "json": {"code": "PAYEE_NOT_FOUND", "message": "No such payee."}},
    ),
    "tls_error": (Answer.REFUSED, {"body": requests.exceptions.SSLError("bad certificate")}),
}
TOKEN_EXAMPLES: dict[str, tuple[Answer, dict]] = {
    "token_refused": (
        Answer.REFUSED,
        {"status": 401, "json": {"error": "login_failed", "message": "Bad API key."}},
    ),
    # An unreadable answer is treated as unknown: the gateway never fails on a guess.
    "token_without_access_token": (Answer.UNKNOWN, {"status": 200, "json": {"expires_in": 3600}}),
}


def _answer(mtn: responses.RequestsMock, example: str) -> None:
    if example in TOKEN_EXAMPLES:
        mtn.replace(responses.POST, TOKEN, **TOKEN_EXAMPLES[example][1])
    else:
        mtn.replace(responses.POST, TRANSFER, **EXAMPLES[example][1])


def _error_of(mtn: responses.RequestsMock, tenant, example: str) -> MtnError | None:
    """The MtnError one submission attempt raises for this answer (None for success)."""
    from payments.services.submit import transfer_submit_job

    _answer(mtn, example)
    job = transfer_submit_job(transfer=queued(tenant, kind="payout"))
    call = next(job)
    job.close()
    try:
        call.execute()
    except MtnError as exc:
        return exc
    return None


@pytest.mark.parametrize("example", [*EXAMPLES, *TOKEN_EXAMPLES])
def test_every_kind_of_answer_is_classified(tenant, mtn, example):
    expected = {**EXAMPLES, **TOKEN_EXAMPLES}[example][0]

    error = _error_of(mtn, tenant, example)

    if expected in (Answer.ACCEPTED, Answer.DUPLICATE):
        assert error is None  # the client answers 202 and 409 for our reference as success
    else:
        assert error is not None
        assert answer_of(error) == expected


def test_the_table_covers_every_answer_both_ways():
    assert set(SUBMISSION_OUTCOMES) == {(a, landed) for a in Answer for landed in (False, True)}
    # Never FAILED once an earlier attempt may have landed.
    assert all(SUBMISSION_OUTCOMES[(a, True)] != Next.FAIL for a in Answer)


# One representative answer per row; each row is run for real.
ROW_EXAMPLES = {
    Answer.ACCEPTED: "202",
    Answer.DUPLICATE: "409_own_reference",
    Answer.UNKNOWN: "read_timeout",
    Answer.NOT_SENT: "429",
    Answer.REFUSED: "403_credential_rotation",
}


@pytest.mark.parametrize(
    ("answer", "landed"), sorted(SUBMISSION_OUTCOMES, key=lambda row: (row[0], row[1]))
)
def test_every_row_of_the_table(tenant, mtn, answer, landed):
    payout = queued(tenant, kind="payout")
    type(payout).objects.filter(pk=payout.pk).update(may_have_landed=landed)
    payout.refresh_from_db()
    _answer(mtn, ROW_EXAMPLES[answer])

    result = transfer_submit(transfer=payout)

    expected = SUBMISSION_OUTCOMES[(answer, landed)]
    assert len(submits(mtn)) == 1
    if expected == Next.SUBMITTED:
        assert (result.status, result.submission) == ("PENDING", Submission.SUBMITTED)
    elif expected == Next.RESEND:
        assert (result.status, result.submission) == ("PENDING", Submission.QUEUED)
        assert result.next_attempt_at > timezone.now()
        assert result.may_have_landed == (landed or answer == Answer.UNKNOWN)
    elif expected == Next.ASK_STATUS:
        assert (result.status, result.submission) == ("PENDING", Submission.CHECKING)
        assert result.next_attempt_at <= timezone.now()  # asked at once
        assert MerchantDelivery.objects.count() == 0
    else:
        assert (result.status, result.submission) == ("FAILED", Submission.REJECTED)
        assert result.failure_code == "FORBIDDEN"
    if expected != Next.FAIL:
        assert result.status == "PENDING"


# --- the reviewer's scenarios: a timeout, then an error on the retry -----------------------


@pytest.mark.parametrize(
    "then",
    [
        "403_credential_rotation",
        "400",
        "500_invalid_callback_url_host",
        "tls_error",
        "token_refused",
        "token_without_access_token",
    ],
)
def test_an_error_after_a_timeout_never_fails_the_payout(tenant, mtn, then):
    payout = queued(tenant, kind="payout")
    _answer(mtn, "read_timeout")
    first = transfer_submit(transfer=payout)
    assert first.may_have_landed
    _answer(mtn, "202")
    _answer(mtn, then)
    type(payout).objects.filter(pk=payout.pk).update(next_attempt_at=timezone.now())
    cache.clear()  # the token expired: the retry asks the token endpoint again
    forget_clients()

    second = transfer_submit(transfer=type(payout).objects.get(pk=payout.pk))

    assert second.status == "PENDING"
    assert second.submission in (Submission.CHECKING, Submission.QUEUED)
    assert MerchantDelivery.objects.count() == 0  # no payout.failed sent
    assert not AuditEvent.objects.filter(action="payout.failed").exists()


def _checking(tenant, mtn):
    payout = queued(tenant, kind="payout")
    _answer(mtn, "read_timeout")
    transfer_submit(transfer=payout)
    _answer(mtn, "403_credential_rotation")
    checking = transfer_submit(transfer=type(payout).objects.get(pk=payout.pk))
    assert checking.submission == Submission.CHECKING
    return checking


def _check(transfer):
    from mtn.calls import run_inline

    return run_inline(transfer_check_job(transfer=transfer))


def test_mtn_never_received_it_so_it_is_sent_again_under_the_same_reference(tenant, mtn):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), status=404, json={"code": "RESOURCE_NOT_FOUND"})

    after = _check(checking)

    assert (after.status, after.submission) == ("PENDING", Submission.QUEUED)
    assert not after.may_have_landed  # MTN's word: nothing landed
    _answer(mtn, "202")
    sent = transfer_submit(transfer=after)
    assert sent.submission == Submission.SUBMITTED
    references = {c.request.headers["X-Reference-Id"] for c in submits(mtn)}
    assert references == {str(checking.mtn_reference_id)}


def test_a_refusal_after_mtn_said_never_received_fails_with_mtns_reason(tenant, mtn):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), status=404, json={"code": "RESOURCE_NOT_FOUND"})
    after = _check(checking)
    _answer(mtn, "500_payee_not_found")

    failed = transfer_submit(transfer=after)

    assert (failed.status, failed.failure_code) == ("FAILED", "PAYEE_NOT_FOUND")


@pytest.mark.parametrize("status", ["SUCCESSFUL", "FAILED"])
def test_mtns_final_status_decides(tenant, mtn, status):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), json=mtn_status_body(checking, status))

    after = _check(checking)

    assert after.status == status
    assert after.submission == Submission.SUBMITTED
    event = {"SUCCESSFUL": "payout.succeeded", "FAILED": "payout.failed"}[status]
    assert MerchantDelivery.objects.get().event_type == event


def test_successful_with_another_amount_is_not_applied(tenant, mtn):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), json=mtn_status_body(checking, "SUCCESSFUL", amount="999"))

    after = _check(checking)

    assert after.status == "PENDING"
    assert after.needs_review
    # The merchant hears of the flag (When MTN disagrees), not of a success.
    assert list(MerchantDelivery.objects.values_list("event_type", flat=True)) == [
        "payout.needs_review"
    ]


def test_mtn_has_it_pending_so_it_is_polled(tenant, mtn):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), json=mtn_status_body(checking, "PENDING"))

    after = _check(checking)

    assert (after.status, after.submission) == ("PENDING", Submission.SUBMITTED)
    assert after.next_attempt_at > timezone.now()


def test_mtn_not_answering_the_check_keeps_it_pending_and_asks_again(tenant, mtn):
    checking = _checking(tenant, mtn)
    mtn.get(status_url(checking), body=requests.ReadTimeout("slow"))

    after = _check(checking)

    assert (after.status, after.submission) == ("PENDING", Submission.CHECKING)
    assert after.next_attempt_at > timezone.now()


def test_one_post_payouts_never_answers_failed_after_two_mtn_calls(tenant, mtn, api_client):
    from conftest import fund_tenant

    fund_tenant(tenant, "UGX", "5000")
    _answer(mtn, "read_timeout")

    response = api_client.post(
        "/api/v1/payouts",
        json.dumps({"amount": "5000", "currency": "UGX", "payee": "256772123456"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="payout-1",
        HTTP_PREFER="wait=5",
    )

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    assert response["Preference-Applied"] == "wait=5"
    assert len(submits(mtn)) == 1  # one attempt per request, whatever MTN answers
    assert not AuditEvent.objects.filter(action="payout.failed").exists()
