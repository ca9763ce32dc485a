"""When MTN disagrees: flagging, refusing refunds under review, resolution and its ledger
correction, the captured fee percent, and MTN's SUCCESSFUL without an amount."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.models import AuditEvent
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get, balance_transaction_list, ledger_verify
from mtn.client import parse_transaction_status
from payments import services
from payments.errors import PaymentUnderReview
from payments.models import Payment, Payout, Refund
from payments.states import Status
from webhooks.models import MerchantDelivery

from .conftest import mtn_status_body, paid, refund_of, submitted

pytestmark = pytest.mark.django_db

STAFF = Actor.staff("operator")


def mtn_says(transfer, status: str, **overrides):
    fresh = type(transfer).objects.select_related("tenant").get(pk=transfer.pk)
    body = mtn_status_body(fresh, status, **overrides)
    return services.transfer_apply_mtn_status(
        transfer=fresh, mtn_status=parse_transaction_status(body), source="test"
    )


def available(tenant, currency: str = "UGX") -> Decimal:
    return balance_get(tenant_id=tenant.pk, currency=currency).available


def events(kind: str) -> list[str]:
    return list(
        MerchantDelivery.objects.filter(object_type=kind)
        .order_by("created_at")
        .values_list("event_type", flat=True)
    )


# --- MTN's SUCCESSFUL needs a readable, equal amount and currency ---------------------------


@pytest.mark.parametrize(
    "override",
    [{"amount": None}, {"amount": "ten"}, {"amount": ""}, {"currency": None}],
    ids=["no-amount", "unreadable-amount", "empty-amount", "no-currency"],
)
def test_successful_without_a_readable_amount_or_currency_changes_nothing_and_flags(
    tenant, override
):
    payment = submitted(tenant)
    body = mtn_status_body(payment, "SUCCESSFUL")
    for key, value in override.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value

    result = services.transfer_apply_mtn_status(
        transfer=payment, mtn_status=parse_transaction_status(body), source="poll"
    )

    assert result.outcome == services.Applied.MISMATCH
    current = Payment.objects.get(pk=payment.pk)
    assert (current.status, current.needs_review) == (Status.PENDING, True)
    assert current.mtn_claim == body
    assert not LedgerTransaction.objects.filter(source_id=payment.pk).exists()
    assert available(tenant) == 0
    assert events("payment") == ["payment.needs_review"]


# --- the fee percent captured at creation ---------------------------------------------------


def test_the_fee_is_the_percent_in_force_when_the_payment_was_created(tenant):
    tenant.collection_fee_percent = Decimal("1.00")
    tenant.save(update_fields=["collection_fee_percent"])
    payment = submitted(tenant, amount="10000")
    tenant.collection_fee_percent = Decimal("5.00")  # changed while the payment is pending
    tenant.save(update_fields=["collection_fee_percent"])

    mtn_says(payment, "SUCCESSFUL")

    assert Payment.objects.get(pk=payment.pk).collection_fee_percent == Decimal("1.00")
    posted = LedgerTransaction.objects.get(source_id=payment.pk, type="payment")
    assert (posted.fee, posted.net) == (Decimal("100"), Decimal("9900"))
    assert available(tenant) == Decimal("9900")


# --- contradictions of a final state --------------------------------------------------------


def test_a_failed_refund_that_mtn_reports_successful_is_flagged_and_blocks_refunds(tenant):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "1000")
    mtn_says(refund, "FAILED", reason="NOT_ENOUGH_FUNDS")
    assert available(tenant) == Decimal("1000")

    result = mtn_says(refund, "SUCCESSFUL")

    assert result.outcome == services.Applied.CONTRADICTED
    refund.refresh_from_db()
    assert (refund.status, refund.needs_review, refund.mtn_claim_status) == (
        Status.FAILED,
        True,
        Status.SUCCESSFUL,
    )
    assert "MTN reports SUCCESSFUL; the refund is FAILED" in refund.review_reason
    assert available(tenant) == Decimal("1000")  # nothing applied silently
    assert events("refund") == ["refund.failed", "refund.needs_review"]
    claim = AuditEvent.objects.get(action="refund.flagged_for_review")
    assert claim.data["mtn"]["status"] == "SUCCESSFUL"
    # The payment cannot be refunded again while MTN's word is in doubt.
    with pytest.raises(PaymentUnderReview):
        refund_of(Payment.objects.get(pk=payment.pk), "1000")
    assert Refund.objects.count() == 1
    assert available(tenant) == Decimal("1000")


def test_accepting_mtn_corrects_status_ledger_and_amount_refunded_once(tenant):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")
    mtn_says(refund, "FAILED", reason="NOT_ENOUGH_FUNDS")
    mtn_says(refund, "SUCCESSFUL")

    result = services.transfer_resolve(
        transfer=refund, decision=services.ACCEPT_MTN, reason="MTN paid it", actor=STAFF
    )

    assert (result.changed, result.previous_status) == (True, Status.FAILED)
    refund.refresh_from_db()
    assert (refund.status, refund.needs_review) == (Status.SUCCESSFUL, False)
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("400")
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("600"), Decimal("0"))
    correction = LedgerTransaction.objects.get(type="correction")
    assert (correction.amount, correction.fee, correction.net) == (
        Decimal("-400"),
        Decimal("0"),
        Decimal("-400"),
    )
    assert correction.memo == "MTN paid it"
    delivery = MerchantDelivery.objects.filter(object_type="refund").latest("created_at")
    assert delivery.event_type == "refund.succeeded"
    assert delivery.payload["data"]["corrected"] is True
    assert delivery.payload["data"]["status"] == Status.SUCCESSFUL
    assert AuditEvent.objects.filter(action="refund.corrected", actor_id="operator").count() == 1
    assert ledger_verify() == []

    again = services.transfer_resolve(
        transfer=refund, decision=services.ACCEPT_MTN, reason="again", actor=STAFF
    )

    assert not again.changed
    assert LedgerTransaction.objects.filter(type="correction").count() == 1
    assert available(tenant) == Decimal("600")
    # Resolved: the payment can be refunded again, up to what is left.
    assert refund_of(Payment.objects.get(pk=payment.pk)).amount == Decimal("600")


def test_a_successful_payment_that_mtn_reports_failed_is_taken_back_with_its_fee(tenant):
    tenant.collection_fee_percent = Decimal("2.50")
    tenant.save(update_fields=["collection_fee_percent"])
    payment = paid(tenant, amount="10000")
    tenant.collection_fee_percent = Decimal("9.00")
    tenant.save(update_fields=["collection_fee_percent"])
    assert available(tenant) == Decimal("9750")

    mtn_says(payment, "FAILED", reason="APPROVAL_REJECTED")
    services.transfer_resolve(
        transfer=payment, decision=services.ACCEPT_MTN, reason="MTN never took it", actor=STAFF
    )

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (Status.FAILED, "APPROVAL_REJECTED")
    assert available(tenant) == 0
    correction = LedgerTransaction.objects.get(type="correction")
    # The fee at the captured 2.5 %, not the tenant's 9 % of today.
    assert (correction.amount, correction.fee, correction.net) == (
        Decimal("-10000"),
        Decimal("-250"),
        Decimal("-9750"),
    )
    page = balance_transaction_list(tenant_id=tenant.pk, type="correction")
    assert [row.pk for row in page.results] == [correction.pk]
    assert ledger_verify() == []


def test_a_payout_mtn_reports_failed_after_success_gives_the_money_back(tenant):
    payout = submitted(tenant, kind="payout", amount="700")
    mtn_says(payout, "SUCCESSFUL")
    mtn_says(payout, "FAILED", reason="PAYEE_NOT_FOUND")

    services.transfer_resolve(
        transfer=payout, decision=services.ACCEPT_MTN, reason="MTN failed it", actor=STAFF
    )

    assert Payout.objects.get(pk=payout.pk).status == Status.FAILED
    balance = balance_get(tenant_id=tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("700"), Decimal("0"))
    assert ledger_verify() == []


def test_a_batch_item_mtn_reports_failed_after_success_moves_the_batch_counts(tenant):
    from payments.models import PayoutBatch
    from payments.tests.admin.test_batch_admin import make_batch

    batch = make_batch(tenant, count=3, failed=1, succeeded=2)
    item = Payout.objects.filter(batch=batch, status=Status.SUCCESSFUL).first()
    mtn_says(item, "FAILED", reason="PAYEE_NOT_FOUND")

    services.transfer_resolve(
        transfer=item, decision=services.ACCEPT_MTN, reason="MTN failed it", actor=STAFF
    )

    after = PayoutBatch.objects.get(pk=batch.pk)
    assert (after.successful_count, after.failed_count, after.pending_count) == (1, 2, 0)
    assert after.amount_succeeded == batch.amount_succeeded - item.amount
    assert after.status == PayoutBatch.State.COMPLETED
    assert ledger_verify() == []


def test_keep_clears_the_flag_and_the_same_claim_does_not_flag_again(tenant):
    payout = submitted(tenant, kind="payout", amount="700")
    mtn_says(payout, "SUCCESSFUL")
    mtn_says(payout, "FAILED")

    result = services.transfer_resolve(
        transfer=payout, decision=services.KEEP, reason="MTN's record is wrong", actor=STAFF
    )
    mtn_says(payout, "FAILED")  # the next reconcile hears the same claim

    payout.refresh_from_db()
    assert result.changed
    assert (payout.status, payout.needs_review) == (Status.SUCCESSFUL, False)
    assert not LedgerTransaction.objects.filter(type="correction").exists()
    assert events("payout") == ["payout.succeeded", "payout.needs_review"]
    assert AuditEvent.objects.filter(action="payout.review_resolved").count() == 1


def test_a_correction_the_balance_cannot_pay_is_refused_and_changes_nothing(tenant):
    payment = paid(tenant, amount="1000")
    refund_of(payment, "1000")  # the money is spent: reserved for a refund in flight
    mtn_says(payment, "FAILED")
    before = balance_get(tenant_id=tenant.pk, currency="UGX")

    with pytest.raises(services.ResolutionRefused, match="cannot be posted"):
        services.transfer_resolve(
            transfer=payment, decision=services.ACCEPT_MTN, reason="reverse", actor=STAFF
        )

    current = Payment.objects.get(pk=payment.pk)
    assert (current.status, current.needs_review) == (Status.SUCCESSFUL, True)
    assert balance_get(tenant_id=tenant.pk, currency="UGX") == before
    assert not LedgerTransaction.objects.filter(type="correction").exists()
    assert not AuditEvent.objects.filter(action="payment.corrected").exists()


# --- the command ----------------------------------------------------------------------------


def test_transfer_resolve_command_accepts_keeps_and_refuses(tenant):
    payout = submitted(tenant, kind="payout", amount="500")
    mtn_says(payout, "SUCCESSFUL")
    mtn_says(payout, "FAILED")
    out = io.StringIO()

    call_command("transfer_resolve", str(payout.pk), "--accept-mtn", "--reason", "MTN", stdout=out)
    second = io.StringIO()
    call_command("transfer_resolve", str(payout.pk), "--keep", "--reason", "again", stdout=second)

    first = json.loads(out.getvalue())
    assert (first["changed"], first["previous_status"], first["status"]) == (
        True,
        "SUCCESSFUL",
        "FAILED",
    )
    assert json.loads(second.getvalue())["changed"] is False
    with pytest.raises(CommandError):
        call_command("transfer_resolve", "not-an-id", "--keep", "--reason", "x")
    with pytest.raises(CommandError):
        call_command("transfer_resolve", str(payout.pk), "--keep", "--reason", "  ")
    assert LedgerTransaction.objects.filter(type="correction").count() == 1


def test_accept_mtn_refuses_a_claim_with_another_amount(tenant):
    fund_tenant(tenant, "UGX", "5000")
    payout = submitted(tenant, kind="payout", amount="500")
    mtn_says(payout, "SUCCESSFUL")
    mtn_says(payout, "SUCCESSFUL", amount="900")

    with pytest.raises(services.ResolutionRefused, match="amount"):
        services.transfer_resolve(
            transfer=payout, decision=services.ACCEPT_MTN, reason="x", actor=STAFF
        )
    assert Payout.objects.get(pk=payout.pk).needs_review is True


def test_mtn_changing_its_mind_twice_is_flagged_and_corrected_twice(tenant):
    payment = paid(tenant, amount="1000")
    for status in ("FAILED", "SUCCESSFUL"):
        mtn_says(payment, status)
        services.transfer_resolve(
            transfer=payment, decision=services.ACCEPT_MTN, reason=status, actor=STAFF
        )

    payment.refresh_from_db()
    assert (payment.status, payment.needs_review) == (Status.SUCCESSFUL, False)
    assert available(tenant) == Decimal("1000")
    assert LedgerTransaction.objects.filter(type="correction").count() == 2
    assert events("payment") == [
        "payment.succeeded",
        "payment.needs_review",
        "payment.failed",
        "payment.needs_review",
        "payment.succeeded",
    ]
    assert ledger_verify() == []
