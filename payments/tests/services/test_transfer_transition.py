"""``transfer_transition``, the one status writer: guarded, audited, and writing the outbox."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from gateway.audit import Actor
from gateway.models import AuditEvent
from mtn.client import parse_transaction_status
from payments.errors import InvalidTransition
from payments.models import Payment
from payments.representation import transfer_representation
from payments.services import Applied, transfer_apply_mtn_status, transfer_transition
from payments.states import Submission
from webhooks.models import MerchantDelivery

from .conftest import mtn_status_body, queued, submitted


def _finish(transfer, target="SUCCESSFUL", **kwargs):
    return transfer_transition(transfer=transfer, target=target, actor=Actor.mtn(), **kwargs)


@pytest.mark.parametrize(("target", "event"), [("SUCCESSFUL", "succeeded"), ("FAILED", "failed")])
@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_final_state_writes_one_audit_event_and_one_delivery(tenant, kind, target, event):
    transfer = submitted(tenant, kind=kind)

    result = _finish(transfer, target, failure_code="EXPIRED" if target == "FAILED" else "")

    assert result.changed is True
    assert result.transfer.status == target
    assert result.transfer.next_attempt_at is None
    assert result.transfer.finalized_at is not None
    assert AuditEvent.objects.filter(action=f"{kind}.{event}").count() == 1
    delivery = MerchantDelivery.objects.get()
    assert delivery.event_type == f"{kind}.{event}"
    assert delivery.payload["type"] == f"{kind}.{event}"
    assert delivery.payload["data"] == transfer_representation(
        type(transfer).objects.get(pk=transfer.pk)
    )


def test_delivery_is_written_in_the_same_transaction_as_the_status(tenant):
    payment = submitted(tenant)
    events = AuditEvent.objects.count()

    seen_inside = []

    def settle_then_fail() -> None:
        with transaction.atomic():
            _finish(payment)
            seen_inside.append(MerchantDelivery.objects.count())
            raise RuntimeError("the surrounding transaction fails")

    with pytest.raises(RuntimeError):
        settle_then_fail()

    assert seen_inside == [1]  # written with the status...
    assert Payment.objects.get(pk=payment.pk).status == "PENDING"
    assert MerchantDelivery.objects.count() == 0  # ...and rolled back with it
    assert AuditEvent.objects.count() == events


def test_repeat_of_the_current_status_changes_nothing(tenant):
    payment = submitted(tenant)
    first = _finish(payment).transfer
    events = AuditEvent.objects.count()

    again = _finish(payment)

    assert again.changed is False
    assert again.transfer.updated_at == first.updated_at
    assert AuditEvent.objects.count() == events
    assert MerchantDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("first", "then"),
    [("SUCCESSFUL", "FAILED"), ("FAILED", "SUCCESSFUL"), ("SUCCESSFUL", "PENDING")],
)
def test_final_state_never_changes(tenant, first, then):
    payment = submitted(tenant)
    done = _finish(payment, first).transfer
    events = AuditEvent.objects.count()

    with pytest.raises(InvalidTransition):
        _finish(payment, then)

    current = Payment.objects.get(pk=payment.pk)
    assert (current.status, current.updated_at) == (first, done.updated_at)
    assert AuditEvent.objects.count() == events
    assert MerchantDelivery.objects.count() == 1


def test_stale_copy_cannot_overwrite_a_final_state(tenant):
    payment = submitted(tenant)
    stale = Payment.objects.get(pk=payment.pk)
    _finish(payment, "SUCCESSFUL")

    with pytest.raises(InvalidTransition):
        _finish(stale, "FAILED")

    assert Payment.objects.get(pk=payment.pk).status == "SUCCESSFUL"


def test_failure_code_and_message_are_truncated_to_fit(tenant):
    payment = submitted(tenant)

    result = _finish(payment, "FAILED", failure_code="X" * 100, failure_message="m" * 900)

    assert len(result.transfer.failure_code) == 64
    assert len(result.transfer.failure_message) == 500


# --- applying MTN's word ----------------------------------------------------------------------


def test_apply_reports_each_outcome(tenant):
    payment = submitted(tenant)
    ok = parse_transaction_status(mtn_status_body(payment, "SUCCESSFUL"))
    failed = parse_transaction_status(mtn_status_body(payment, "FAILED", reason="EXPIRED"))
    pending = parse_transaction_status(mtn_status_body(payment, "PENDING"))

    assert transfer_apply_mtn_status(transfer=payment, mtn_status=pending, source="t").outcome == (
        Applied.NOT_FINAL
    )
    assert transfer_apply_mtn_status(transfer=payment, mtn_status=ok, source="t").outcome == (
        Applied.APPLIED
    )
    assert transfer_apply_mtn_status(transfer=payment, mtn_status=ok, source="t").outcome == (
        Applied.UNCHANGED
    )
    assert transfer_apply_mtn_status(transfer=payment, mtn_status=failed, source="t").outcome == (
        Applied.CONTRADICTED
    )
    current = Payment.objects.get(pk=payment.pk)
    assert (current.status, current.needs_review, current.mtn_claim_status) == (
        "SUCCESSFUL",
        True,
        "FAILED",
    )
    # The success, then the contradiction: nothing changed silently, the merchant is told.
    assert list(
        MerchantDelivery.objects.order_by("created_at").values_list("event_type", flat=True)
    ) == [
        "payment.succeeded",
        "payment.needs_review",
    ]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"amount": "999"}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"payer": {"partyIdType": "MSISDN", "partyId": "256700000001"}}, "payer"),
        ({"externalId": "someone-else"}, "externalId"),
    ],
)
def test_apply_refuses_a_mismatch_and_flags_it(tenant, override, problem):
    payment = submitted(tenant)
    reported = parse_transaction_status(mtn_status_body(payment, "SUCCESSFUL", **override))

    result = transfer_apply_mtn_status(transfer=payment, mtn_status=reported, source="t")

    assert result.outcome == Applied.MISMATCH
    current = Payment.objects.get(pk=payment.pk)
    assert (current.status, current.needs_review) == ("PENDING", True)
    assert current.mtn_claim == reported.raw
    assert list(MerchantDelivery.objects.values_list("event_type", flat=True)) == [
        "payment.needs_review"
    ]
    assert AuditEvent.objects.get(action="payment.flagged_for_review").data["mismatch"] == [problem]


def test_amount_echoed_without_trailing_zeros_matches(tenant):
    payment = submitted(tenant, amount="12.50", currency="EUR")
    assert payment.amount == Decimal("12.50")
    reported = parse_transaction_status(mtn_status_body(payment, "SUCCESSFUL", amount="12.5"))

    result = transfer_apply_mtn_status(transfer=payment, mtn_status=reported, source="t")

    assert result.outcome == Applied.APPLIED


def test_a_final_status_from_mtn_marks_a_still_queued_payment_submitted(tenant):
    # The answer to our submission was lost (a crash, a timeout) but MTN's callback, confirmed
    # with its status endpoint, settled the payment: MTN has it, nothing is left to send.
    payment = queued(tenant)
    assert payment.submission == Submission.QUEUED

    result = _finish(payment, "SUCCESSFUL")

    stored = Payment.objects.get(pk=payment.pk)
    assert result.changed is True
    assert stored.submission == Submission.SUBMITTED
    assert stored.submitted_at is not None
    assert stored.next_attempt_at is None
