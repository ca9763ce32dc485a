"""MTN's callbacks for refunds: both doors find them, confirm them and apply them once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.selectors import balance_get
from payments.models import Payment, Refund
from shell.worker import Worker
from webhooks.models import MerchantDelivery, MtnCallback

from .conftest import mtn_body, mtn_says, mtn_unreachable, post_signed, post_token


def refund_status_reads(mtn) -> int:
    return sum(
        1
        for call in mtn.calls
        if call.request.method == "GET" and "/disbursement/v1_0/refund/" in call.request.url
    )


def test_a_signed_refund_callback_is_found_by_external_id_confirmed_and_applied(
    http, mtn, refund, settings
):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, refund, "SUCCESSFUL")

    response = post_signed(http, mtn_body(refund))

    assert response.status_code == 200
    assert Refund.objects.get(pk=refund.pk).status == "SUCCESSFUL"
    callback = MtnCallback.objects.get()
    assert (callback.object_type, callback.outcome) == ("refund", MtnCallback.Outcome.APPLIED)
    assert refund_status_reads(mtn) == 1
    assert MerchantDelivery.objects.get(object_type="refund").event_type == "refund.succeeded"
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == Decimal("400")


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_refund_callback_on_its_own_url_is_confirmed_and_applied(http, mtn, refund, method):
    mtn_says(mtn, refund, "FAILED", reason="NOT_ENOUGH_FUNDS")

    response = post_token(
        http,
        refund.callback_token,
        mtn_body(refund, "FAILED", reason="NOT_ENOUGH_FUNDS"),
        method=method,
    )

    assert response.status_code == 200
    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.failure_code) == ("FAILED", "NOT_ENOUGH_FUNDS")
    assert MtnCallback.objects.get().object_type == "refund"
    assert MerchantDelivery.objects.get(object_type="refund").event_type == "refund.failed"
    # The failure gave the reserved amount back.
    balance = balance_get(tenant_id=refund.tenant_id, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("1000"), Decimal("0"))


def test_a_repeated_refund_callback_changes_nothing(http, mtn, refund, settings):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_says(mtn, refund, "SUCCESSFUL")
    post_signed(http, mtn_body(refund))

    post_signed(http, mtn_body(refund))
    post_token(http, refund.callback_token, mtn_body(refund, "FAILED"))

    assert Refund.objects.get(pk=refund.pk).status == "SUCCESSFUL"
    assert [c.outcome for c in MtnCallback.objects.order_by("received_at")] == [
        MtnCallback.Outcome.APPLIED,
        MtnCallback.Outcome.DUPLICATE,
        # Contradicting a final refund: asked of MTN, whose record agrees with ours.
        MtnCallback.Outcome.UNCONFIRMED,
    ]
    assert refund_status_reads(mtn) == 2
    assert Refund.objects.get(pk=refund.pk).needs_review is False
    assert MerchantDelivery.objects.filter(object_type="refund").count() == 1
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == Decimal("400")


def test_a_refund_callback_mtn_cannot_confirm_yet_is_confirmed_by_the_worker(
    http, mtn, refund, settings
):
    settings.MTN_VERIFY_CALLBACKS = True
    mtn_unreachable(mtn, refund)
    post_signed(http, mtn_body(refund))
    callback = MtnCallback.objects.get()
    assert callback.outcome == MtnCallback.Outcome.DEFERRED
    assert Refund.objects.get(pk=refund.pk).status == "PENDING"

    mtn_says(mtn, refund, "SUCCESSFUL")
    MtnCallback.objects.filter(pk=callback.pk).update(next_attempt_at=callback.received_at)
    Worker().run_once()

    callback.refresh_from_db()
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert Refund.objects.get(pk=refund.pk).status == "SUCCESSFUL"


def test_a_refund_callback_with_another_amount_is_flagged_and_not_applied(
    http, mtn, refund, settings
):
    settings.MTN_VERIFY_CALLBACKS = False

    post_signed(http, mtn_body(refund, amount="999"))

    stored = Refund.objects.get(pk=refund.pk)
    assert (stored.status, stored.needs_review) == ("PENDING", True)
    assert MtnCallback.objects.get().outcome == MtnCallback.Outcome.MISMATCH
