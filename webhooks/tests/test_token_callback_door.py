"""The per-payment door, ``/api/v1/webhooks/mtn/<token>``, and the callbacks' health endpoint.

A callback on a payment's own URL is never trusted on its own: MTN's status endpoint is
asked whatever MTN_VERIFY_CALLBACKS says (contract, "MTN callbacks").
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from conftest import dispatch
from gateway.models import AuditEvent
from payments.models import Payment, Payout
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import (
    assert_error,
    mtn_body,
    mtn_says,
    mtn_unreachable,
    post_signed,
    post_token,
    snapshot,
    status_calls,
    submitted,
)

ISO_8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.mark.parametrize("method", ["post", "put"])
def test_right_token_is_confirmed_with_mtn_even_when_verification_is_off(
    http, mtn, payment, settings, method
):
    settings.MTN_VERIFY_CALLBACKS = False
    mtn_says(mtn, payment, "SUCCESSFUL")

    response = post_token(http, payment.callback_token, mtn_body(payment), method=method)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}
    assert status_calls(mtn) == 1
    callback = MtnCallback.objects.get()
    assert callback.door == MtnCallback.Door.TOKEN
    assert callback.method == method.upper()
    assert callback.signature_valid is None
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.confirmed_status == "SUCCESSFUL"
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"
    assert MerchantDelivery.objects.get().event_type == "payment.succeeded"


def test_token_callback_not_confirmed_by_mtn_changes_nothing(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = False
    mtn_says(mtn, payment, "PENDING")
    before = snapshot(payment)

    response = post_token(http, payment.callback_token, mtn_body(payment))

    assert response.status_code == 200
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.UNCONFIRMED
    after = snapshot(payment)
    assert (after.status, after.audit_events, after.deliveries) == (
        "PENDING",
        before.audit_events,
        before.deliveries,
    )


def test_token_callback_is_deferred_when_mtn_cannot_be_asked(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = False
    mtn_unreachable(mtn, payment)

    response = post_token(http, payment.callback_token, mtn_body(payment))

    assert response.status_code == 200
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.DEFERRED
    assert callback.next_attempt_at > timezone.now()
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"

    mtn_says(mtn, payment, "SUCCESSFUL")
    MtnCallback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
    Worker().run_once()

    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.APPLIED
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"


def _altered(token: str) -> str:
    return ("A" if token[0] != "A" else "B") + token[1:]


@pytest.mark.parametrize(
    "make_token",
    [
        _altered,
        lambda token: token[:-1],
        lambda token: token + "x",
        lambda token: token.upper() if token.upper() != token else token.lower(),
        lambda token: "unknown-token",
        lambda token: "x" * 300,
    ],
    ids=["altered", "truncated", "extended", "case", "unknown", "too_long"],
)
@pytest.mark.parametrize("method", ["post", "put"])
def test_altered_or_unknown_token_is_404_and_nothing_is_stored(
    http, mtn, payment, settings, make_token, method
):
    settings.MTN_VERIFY_CALLBACKS = False
    before = snapshot(payment)

    response = post_token(
        http, make_token(payment.callback_token), mtn_body(payment), method=method
    )

    assert_error(response, 404, "not_found")
    assert snapshot(payment) == before
    assert MtnCallback.objects.count() == 0
    assert status_calls(mtn) == 0


def test_token_door_refuses_a_body_that_is_not_json(http, mtn, payment):
    before = snapshot(payment)

    response = post_token(http, payment.callback_token, b"<xml/>")

    assert_error(response, 400, "malformed_json")
    assert snapshot(payment) == before
    assert status_calls(mtn) == 0


def test_token_of_one_payment_cannot_settle_another(http, mtn, payment, tenant, settings):
    other = submitted(tenant)
    mtn_says(mtn, payment, "SUCCESSFUL")
    before = snapshot(other)

    # The body names the other payment; the token decides which payment is meant.
    response = post_token(http, payment.callback_token, mtn_body(other))

    assert response.status_code == 200
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.MISMATCH
    assert Payment.objects.get(pk=other.pk).status == before.status
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"


def test_duplicate_token_callbacks_apply_once(http, mtn, payment):
    mtn_says(mtn, payment, "SUCCESSFUL")

    for _ in range(3):
        assert post_token(http, payment.callback_token, mtn_body(payment)).status_code == 200

    outcomes = list(MtnCallback.objects.order_by("received_at").values_list("outcome", flat=True))
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert AuditEvent.objects.filter(action="payment.succeeded").count() == 1
    assert MerchantDelivery.objects.count() == 1
    assert status_calls(mtn) == 1


@pytest.mark.parametrize("method", ["post", "put"])
def test_payout_token_callback_is_confirmed_and_applied(http, mtn, payout, method):
    mtn_says(mtn, payout, "FAILED", reason="PAYEE_NOT_FOUND")

    response = post_token(
        http,
        payout.callback_token,
        mtn_body(payout, "FAILED", reason="PAYEE_NOT_FOUND"),
        method=method,
    )

    assert response.status_code == 200
    payout = Payout.objects.get(pk=payout.pk)
    assert (payout.status, payout.failure_code) == ("FAILED", "PAYEE_NOT_FOUND")
    assert MtnCallback.objects.get().object_type == "payout"
    assert MerchantDelivery.objects.get().event_type == "payout.failed"
    assert any("/disbursement/v1_0/transfer/" in call.request.url for call in mtn.calls)


def test_callback_url_sent_to_mtn_carries_the_token(api_client, mtn, settings):
    settings.MTN_CALLBACK_URL = "https://gateway.example.com"

    response = api_client.post(
        "/api/v1/payments",
        {"amount": 1000, "currency": "UGX", "payer": "256772123456"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    payment = Payment.objects.get(pk=response.json()["id"])
    dispatch()  # the dispatcher submits it, with the callback URL
    sent = next(c for c in mtn.calls if c.request.url.endswith("/requesttopay"))
    assert sent.request.headers["X-Callback-Url"] == (
        f"https://gateway.example.com/api/v1/webhooks/mtn/{payment.callback_token}"
    )
    assert len(payment.callback_token) >= 22  # at least 128 bits of URL-safe base64


# --- health -----------------------------------------------------------------------------------


def test_health_reports_null_then_the_last_processed_time(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = False

    first = http.get("/api/v1/webhooks/mtn/health")

    assert first.status_code == 200
    assert first.json() == {"status": "ok", "last_processed": None}

    post_signed(http, mtn_body(payment))
    second = http.get("/api/v1/webhooks/mtn/health").json()

    assert second["status"] == "ok"
    assert ISO_8601.match(second["last_processed"]), second
    processed = MtnCallback.objects.get().processed_at
    assert second["last_processed"].replace("Z", "+00:00") == processed.isoformat()


def test_health_ignores_callbacks_refused_at_the_door(http, mtn, payment):
    post_signed(http, mtn_body(payment), signature="0" * 64)
    post_token(http, "nope", mtn_body(payment))

    assert http.get("/api/v1/webhooks/mtn/health").json()["last_processed"] is None
