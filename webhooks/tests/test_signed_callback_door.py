"""The signed door, ``/api/v1/webhooks/mtn``: X-Signature-256 over the raw body, then apply.

Issue 4. MTN does not sign callbacks; a relay (or the simulator) does. With
MTN_VERIFY_CALLBACKS on, MTN's status endpoint must confirm before anything changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from gateway.models import AuditEvent
from payments.models import Payment, Payout
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import (
    assert_error,
    confirm_callbacks,
    mtn_body,
    mtn_says,
    mtn_unreachable,
    post_signed,
    post_token,
    sign,
    snapshot,
    status_calls,
)


@pytest.fixture
def unverified(settings) -> None:
    """Callbacks on the signed door are applied as they come (MTN_VERIFY_CALLBACKS off)."""
    settings.MTN_VERIFY_CALLBACKS = False


# --- signatures -------------------------------------------------------------------------------


def _bad_signatures(raw: bytes) -> dict[str, str | None]:
    good = sign(raw)
    return {
        "missing": None,
        "empty": "",
        "forged": "0" * 64,
        "truncated": good[:-1],
        "truncated_prefixed": f"sha256={good[:32]}",
        "other_body": sign(raw + b" "),
        "other_secret": hmac.new(b"not-the-secret", raw, hashlib.sha256).hexdigest(),
        "not_hex": "z" * 64,
        "sha1_prefix": f"sha1={good}",
        "extra_char": good + "0",
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "forged",
        "truncated",
        "truncated_prefixed",
        "other_body",
        "other_secret",
        "not_hex",
        "sha1_prefix",
        "extra_char",
    ],
)
def test_bad_signature_is_refused_and_changes_nothing(http, mtn, payment, case):
    raw = json.dumps(mtn_body(payment)).encode()
    before = snapshot(payment)

    response = post_signed(http, raw, signature=_bad_signatures(raw)[case])

    assert_error(response, 401, "invalid_signature")
    assert snapshot(payment) == before
    assert MtnCallback.objects.count() == 0
    assert status_calls(mtn) == 0


def test_bad_signature_on_put_is_refused_too(http, mtn, payment):
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment), signature="f" * 64, method="put")

    assert_error(response, 401, "invalid_signature")
    assert snapshot(payment) == before


def test_signature_over_the_raw_bytes_of_an_oddly_spaced_body_is_accepted(
    http, mtn, payment, unverified
):
    body = mtn_body(payment)
    # Keys reversed, odd whitespace and a newline: re-serialising would change the bytes.
    raw = (
        "{ \n  "
        + " ,\t".join(f"{json.dumps(k)} :  {json.dumps(v)}" for k, v in reversed(body.items()))
        + "\r\n}  "
    ).encode()
    assert json.loads(raw) == body

    response = post_signed(http, raw, signature=sign(raw))

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok"}
    callback = MtnCallback.objects.get()
    assert callback.raw_body == raw.decode()
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"


@pytest.mark.parametrize(
    "form",
    [
        lambda digest: digest,
        lambda digest: f"sha256={digest}",
        lambda digest: digest.upper(),
        lambda digest: f"sha256={digest.upper()}",
        lambda digest: f"SHA256={digest}",
    ],
    ids=["bare", "prefixed", "upper", "prefixed_upper", "upper_prefix"],
)
def test_signature_forms_are_accepted(http, mtn, payment, unverified, form):
    raw = json.dumps(mtn_body(payment)).encode()

    response = post_signed(http, raw, signature=form(sign(raw)))

    assert response.status_code == 200, response.content
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"


def test_the_signature_matches_githubs_test_vector():
    from webhooks.signing import inbound_signature, inbound_signature_valid

    digest = inbound_signature("It's a Secret to Everybody", b"Hello, World!")

    assert digest == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert inbound_signature_valid(
        secret="It's a Secret to Everybody", raw_body=b"Hello, World!", header=f"sha256={digest}"
    )


@pytest.mark.parametrize("raw", [b"not json", b"{", b"", b'{"status": NaN}', b"\xff\xfe"])
def test_non_json_body_with_a_valid_signature_is_malformed_json(http, mtn, payment, raw):
    before = snapshot(payment)

    response = post_signed(http, raw, signature=sign(raw))

    assert_error(response, 400, "malformed_json")
    assert snapshot(payment) == before
    assert status_calls(mtn) == 0


@pytest.mark.parametrize("body", [[1, 2], "SUCCESSFUL", 42])
def test_json_that_is_not_an_object_is_stored_and_changes_nothing(http, mtn, payment, body):
    before = snapshot(payment)

    response = post_signed(http, body)

    assert response.status_code == 200
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.UNMATCHED
    assert Payment.objects.get(pk=payment.pk).status == before.status
    assert status_calls(mtn) == 0


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "external_id", ["3f1c2a9e-8a5e-4c1e-9a55-7d7d2f1a0b11", "order-42", None, 12]
)
def test_callback_for_no_known_payment_is_stored_unmatched(http, mtn, payment, external_id):
    before = snapshot(payment)
    body = mtn_body(payment, externalId=external_id)
    if external_id is None:
        body.pop("externalId", None)

    response = post_signed(http, body)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.UNMATCHED
    assert callback.object_id is None
    assert callback.signature_valid is True
    assert callback.raw_body == json.dumps(body)
    after = snapshot(payment)
    assert (after.status, after.audit_events, after.deliveries) == (
        before.status,
        before.audit_events,
        before.deliveries,
    )
    assert status_calls(mtn) == 0


# --- confirmation with MTN (MTN_VERIFY_CALLBACKS on, the default) --------------------------


def test_confirmed_callback_is_applied(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "SUCCESSFUL")

    response = post_signed(http, mtn_body(payment))

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    assert payment.mtn_financial_transaction_id == "1234567890"
    assert payment.next_attempt_at is None
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.confirmed_status == "SUCCESSFUL"
    assert callback.reported_status == "SUCCESSFUL"
    assert callback.processed_at is not None
    assert callback.object_id == payment.pk
    assert callback.tenant_id == payment.tenant_id
    assert status_calls(mtn) == 1
    assert MerchantDelivery.objects.get().event_type == "payment.succeeded"


def test_callback_that_mtn_does_not_confirm_changes_nothing(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "PENDING")
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment))

    assert response.status_code == 200
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.UNCONFIRMED
    assert callback.confirmed_status == "PENDING"
    after = snapshot(payment)
    assert after.status == "PENDING"
    assert (after.audit_events, after.deliveries) == (before.audit_events, before.deliveries)
    assert status_calls(mtn) == 1


def test_callback_contradicted_by_mtn_applies_mtns_record(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "FAILED", reason="EXPIRED")

    post_signed(http, mtn_body(payment, "SUCCESSFUL"))

    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.UNCONFIRMED
    payment.refresh_from_db()
    assert payment.status == "FAILED"
    assert payment.failure_code == "EXPIRED"


def test_callback_is_deferred_when_mtn_cannot_be_asked_and_the_worker_confirms_it_later(
    http, mtn, payment, settings
):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_unreachable(mtn, payment)
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment))

    assert response.status_code == 200
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.DEFERRED
    assert callback.confirm_attempts == 1
    assert callback.next_attempt_at is not None
    assert callback.next_attempt_at > timezone.now()
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"
    assert snapshot(payment).deliveries == before.deliveries

    # MTN is back; the worker's turn comes.
    mtn_says(mtn, payment, "SUCCESSFUL")
    MtnCallback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=None)
    done = Worker().run_once()

    assert done.get("callback.confirmed_applied") == 1
    callback.refresh_from_db()
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.next_attempt_at is None
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"
    assert MerchantDelivery.objects.filter(object_id=payment.pk).count() == 1


def test_deferred_callback_stays_deferred_with_a_later_retry_while_mtn_is_down(
    http, mtn, payment, settings
):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_unreachable(mtn, payment)
    post_signed(http, mtn_body(payment))
    callback = MtnCallback.objects.get()
    first_gap = callback.next_attempt_at - callback.received_at

    MtnCallback.objects.filter(pk=callback.pk).update(next_attempt_at=timezone.now())
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=None)
    Worker().run_once()

    callback.refresh_from_db()
    assert callback.outcome == MtnCallback.Outcome.DEFERRED
    assert callback.confirm_attempts == 2
    assert callback.next_attempt_at - timezone.now() > first_gap
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"


# --- applying without confirmation (MTN_VERIFY_CALLBACKS off) -------------------------------


def test_unverified_callback_is_applied_without_asking_mtn(http, mtn, payment, unverified):
    response = post_signed(http, mtn_body(payment))

    assert response.status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.APPLIED
    assert status_calls(mtn) == 0


@pytest.mark.parametrize("method", ["post", "put"])
def test_post_and_put_both_work(http, mtn, payment, unverified, method):
    response = post_signed(http, mtn_body(payment), method=method)

    assert response.status_code == 200
    assert MtnCallback.objects.get().method == method.upper()
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"


def test_duplicate_callback_changes_nothing(http, mtn, payment, unverified):
    post_signed(http, mtn_body(payment))
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment))

    assert response.status_code == 200
    assert MtnCallback.objects.latest("received_at").outcome == MtnCallback.Outcome.DUPLICATE
    after = snapshot(payment)
    assert (after.status, after.updated_at, after.audit_events, after.deliveries) == (
        before.status,
        before.updated_at,
        before.audit_events,
        before.deliveries,
    )
    assert AuditEvent.objects.filter(action="payment.succeeded").count() == 1
    assert MerchantDelivery.objects.count() == 1
    assert status_calls(mtn) == 0


def test_duplicate_confirmed_callback_asks_mtn_no_more(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "SUCCESSFUL")
    post_signed(http, mtn_body(payment))

    post_signed(http, mtn_body(payment))

    assert status_calls(mtn) == 1
    assert AuditEvent.objects.filter(action="payment.succeeded").count() == 1
    assert MerchantDelivery.objects.count() == 1


@pytest.mark.parametrize("verify", [True, False])
def test_late_contradicting_callback_for_a_final_payment_is_flagged_not_applied(
    http, mtn, payment, settings, verify
):
    settings.MTN_VERIFY_CALLBACKS = False
    post_signed(http, mtn_body(payment, "SUCCESSFUL"))
    settings.MTN_VERIFY_CALLBACKS = verify
    mtn_says(mtn, payment, "FAILED", reason="APPROVAL_REJECTED")
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment, "FAILED", reason="APPROVAL_REJECTED"))

    assert response.status_code == 200
    assert MtnCallback.objects.latest("received_at").outcome == MtnCallback.Outcome.CONTRADICTED
    after = Payment.objects.get(pk=payment.pk)
    # Nothing changes silently: still SUCCESSFUL, flagged with MTN's claim, merchant told.
    assert (after.status, after.failure_code, after.needs_review) == ("SUCCESSFUL", "", True)
    assert after.mtn_claim_status == "FAILED"
    assert after.mtn_claim["reason"] == "APPROVAL_REJECTED"
    assert MerchantDelivery.objects.count() == before.deliveries + 1
    assert MerchantDelivery.objects.latest("created_at").event_type == "payment.needs_review"
    flagged = AuditEvent.objects.get(action="payment.flagged_for_review")
    assert (flagged.data["status"], flagged.data["mtn_status"]) == ("SUCCESSFUL", "FAILED")
    # Confirmed with MTN first when verification is on.
    assert status_calls(mtn) == (1 if verify else 0)


def test_late_contradicting_callback_that_mtn_does_not_confirm_changes_nothing(
    http, mtn, payment, settings
):
    settings.MTN_VERIFY_CALLBACKS = False
    post_signed(http, mtn_body(payment, "SUCCESSFUL"))
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "SUCCESSFUL")
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment, "FAILED"))

    assert response.status_code == 200
    assert MtnCallback.objects.latest("received_at").outcome == MtnCallback.Outcome.UNCONFIRMED
    after = snapshot(payment)
    assert (after.status, after.needs_review, after.updated_at) == (
        "SUCCESSFUL",
        False,
        before.updated_at,
    )
    assert (after.audit_events, after.deliveries) == (before.audit_events, before.deliveries)
    assert status_calls(mtn) == 1


@pytest.mark.parametrize("verify", [True, False])
def test_out_of_order_pending_after_success_changes_nothing(http, mtn, payment, settings, verify):
    settings.MTN_VERIFY_CALLBACKS = False
    post_signed(http, mtn_body(payment, "SUCCESSFUL"))
    settings.MTN_VERIFY_CALLBACKS = verify
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment, "PENDING"))

    assert response.status_code == 200
    assert status_calls(mtn) == 0
    after = snapshot(payment)
    assert (after.status, after.updated_at, after.audit_events, after.deliveries) == (
        "SUCCESSFUL",
        before.updated_at,
        before.audit_events,
        before.deliveries,
    )


def test_pending_callback_for_a_pending_payment_changes_nothing(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    before = snapshot(payment)

    post_signed(http, mtn_body(payment, "PENDING"))

    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.NOT_FINAL
    after = snapshot(payment)
    assert (after.status, after.audit_events, after.deliveries) == (
        "PENDING",
        before.audit_events,
        before.deliveries,
    )
    assert status_calls(mtn) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("amount", "999"), ("amount", "1000.01"), ("currency", "EUR"), ("payer", "wrong")],
)
@pytest.mark.parametrize("verify", [True, False])
def test_mismatched_callback_is_flagged_and_changes_no_status(
    http, mtn, payment, settings, field, value, verify
):
    settings.MTN_VERIFY_CALLBACKS = verify
    if field == "payer":
        value = {"partyIdType": "MSISDN", "partyId": "256700000999"}
    before = snapshot(payment)

    response = post_signed(http, mtn_body(payment, **{field: value}))

    assert response.status_code == 200
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.MISMATCH
    payment.refresh_from_db()
    assert payment.status == "PENDING"
    assert payment.needs_review is True
    assert MerchantDelivery.objects.count() == before.deliveries + 1
    assert MerchantDelivery.objects.get().event_type == "payment.needs_review"
    flagged = AuditEvent.objects.get(action="payment.flagged_for_review")
    assert field in flagged.data["mismatch"]
    assert status_calls(mtn) == 0


def test_amount_written_differently_but_equal_is_not_a_mismatch(http, mtn, payment, unverified):
    post_signed(http, mtn_body(payment, amount="1000.00"))

    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.APPLIED
    assert Payment.objects.get(pk=payment.pk).needs_review is False


@pytest.mark.parametrize(
    ("reason", "code", "message"),
    [
        # A bare code is shown with a sentence, never the code repeated (payments.reasons).
        (
            "APPROVAL_REJECTED",
            "APPROVAL_REJECTED",
            "The payer declined the request on their phone.",
        ),
        (
            {"code": "NOT_ENOUGH_FUNDS", "message": "The payer does not have enough funds."},
            "NOT_ENOUGH_FUNDS",
            "The payer does not have enough funds.",
        ),
    ],
    ids=["string", "object"],
)
def test_reason_as_string_or_object_lands_in_failure_reason(
    http, mtn, payment, api_client, unverified, reason, code, message
):
    post_signed(http, mtn_body(payment, "FAILED", reason=reason))

    shown = api_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert shown["status"] == "FAILED"
    assert shown["failure_reason"] == {"code": code, "message": message}
    delivery = MerchantDelivery.objects.get()
    assert delivery.event_type == "payment.failed"
    assert delivery.payload["data"]["failure_reason"] == {"code": code, "message": message}


def test_confirmed_failure_takes_the_reason_from_mtns_status_endpoint(http, mtn, payment, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "FAILED", reason={"code": "EXPIRED", "message": "Too late."})

    post_signed(http, mtn_body(payment, "FAILED", reason="EXPIRED"))

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.failure_message) == (
        "FAILED",
        "EXPIRED",
        "Too late.",
    )


# --- payouts ----------------------------------------------------------------------------------


def test_payout_callback_is_applied_the_same_way(http, mtn, payout, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payout, "SUCCESSFUL")

    response = post_signed(http, mtn_body(payout))

    assert response.status_code == 200
    assert Payout.objects.get(pk=payout.pk).status == "SUCCESSFUL"
    callback = MtnCallback.objects.get()
    assert (callback.object_type, callback.outcome) == ("payout", MtnCallback.Outcome.APPLIED)
    assert MerchantDelivery.objects.get().event_type == "payout.succeeded"
    assert any("/disbursement/v1_0/transfer/" in call.request.url for call in mtn.calls)


def test_payout_failure_callback_lands_in_failure_reason(http, mtn, payout, unverified):
    post_signed(http, mtn_body(payout, "FAILED", reason="PAYEE_NOT_FOUND"))

    payout = Payout.objects.get(pk=payout.pk)
    assert (payout.status, payout.failure_code) == ("FAILED", "PAYEE_NOT_FOUND")
    assert MerchantDelivery.objects.get().event_type == "payout.failed"


def test_a_callback_without_an_amount_is_confirmed_with_mtn_and_applied_at_its_word(
    http, mtn, payment, settings
):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, payment, "SUCCESSFUL")
    body = mtn_body(payment, "SUCCESSFUL")
    del body["amount"]

    post_signed(http, body)

    payment.refresh_from_db()
    assert (payment.status, payment.needs_review) == ("SUCCESSFUL", False)
    assert status_calls(mtn) == 1


def test_an_unverified_successful_without_an_amount_is_flagged_not_applied(
    http, mtn, payment, unverified
):
    body = mtn_body(payment, "SUCCESSFUL")
    del body["amount"]

    post_signed(http, body)

    payment.refresh_from_db()
    assert (payment.status, payment.needs_review) == ("PENDING", True)
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.MISMATCH
    assert list(MerchantDelivery.objects.values_list("event_type", flat=True)) == [
        "payment.needs_review"
    ]


# --- answered at once, confirmed by the dispatcher --------------------------------------------


@pytest.mark.parametrize("door", ["signed", "token"])
@pytest.mark.parametrize("method", ["post", "put"])
def test_a_callback_is_stored_and_answered_without_a_call_to_mtn(http, mtn, payment, door, method):
    mtn_says(mtn, payment, "SUCCESSFUL")
    body = mtn_body(payment)

    if door == "signed":
        response = post_signed(http, body, method=method, confirm=False)
    else:
        response = post_token(http, payment.callback_token, body, method=method, confirm=False)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(mtn.calls) == 0  # MTN is asked by the dispatcher, never in the request
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.RECEIVED
    assert callback.next_attempt_at <= timezone.now()  # due for the dispatcher now
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"

    assert confirm_callbacks() == {"callback.confirmed_applied": 1}

    assert status_calls(mtn) == 1
    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"
