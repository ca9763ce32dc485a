"""Refunds through the services: the rules of creation, the money, submission, settlement."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.models import AuditEvent
from ledger.errors import InsufficientFunds
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_adjust
from mtn.client import parse_transaction_status
from payments import services
from payments.errors import InvalidTransition, PaymentNotRefundable, RefundExceedsPayment
from payments.models import Payment, Payout, Refund
from payments.representation import transfer_representation
from payments.states import Status, Submission
from webhooks.models import MerchantDelivery

from .conftest import REFUND, mtn_status_body, paid, queued, refund_of, status_url, submits


def available(tenant, currency: str = "UGX") -> Decimal:
    return balance_get(tenant_id=tenant.pk, currency=currency).available


def reserved(tenant, currency: str = "UGX") -> Decimal:
    return balance_get(tenant_id=tenant.pk, currency=currency).reserved


def nothing_refunded() -> None:
    assert not Refund.objects.exists()
    assert not AuditEvent.objects.filter(object_type="refund").exists()
    assert not LedgerTransaction.objects.filter(source_object="refund").exists()


# --- creation -----------------------------------------------------------------------------------


def test_a_refund_is_stored_pending_with_its_own_mtn_reference(tenant):
    payment = paid(tenant)

    refund = refund_of(payment, "400")

    stored = Refund.objects.get()
    assert stored.pk == refund.pk
    assert (stored.status, stored.submission) == (Status.PENDING, Submission.QUEUED)
    assert stored.amount == Decimal("400")
    assert stored.currency == "UGX"
    assert stored.payer == payment.payer
    assert stored.reason == "damaged"
    assert stored.mtn_reference_id not in (None, payment.mtn_reference_id)
    event = AuditEvent.objects.get(object_type="refund", action="refund.created")
    assert event.data["payment"] == str(payment.pk)
    assert event.data["mtn_reference_id"] == str(stored.mtn_reference_id)


def test_the_amount_defaults_to_what_is_left_to_refund(tenant):
    payment = paid(tenant, amount="1000")
    refund_of(payment, "300")

    rest = refund_of(payment)

    assert rest.amount == Decimal("700")


@pytest.mark.parametrize("status", [Status.PENDING, Status.FAILED])
def test_a_payment_that_is_not_successful_is_not_refundable(tenant, status):
    fund_tenant(tenant)
    payment = queued(tenant)
    if status == Status.FAILED:
        services.transfer_transition(transfer=payment, target=status, actor=Actor.mtn())

    with pytest.raises(PaymentNotRefundable):
        refund_of(Payment.objects.get(pk=payment.pk), "100")

    nothing_refunded()


def test_refunds_never_add_up_to_more_than_the_payment(tenant):
    fund_tenant(tenant)  # money is not what stops it
    payment = paid(tenant, amount="1000")
    refund_of(payment, "600")

    with pytest.raises(RefundExceedsPayment, match="400 UGX"):
        refund_of(payment, "500")

    assert list(Refund.objects.values_list("amount", flat=True)) == [Decimal("600")]
    assert AuditEvent.objects.filter(action="refund.created").count() == 1


def test_nothing_left_refuses_a_refund_of_the_rest(tenant):
    payment = paid(tenant, amount="1000")
    refund_of(payment)

    with pytest.raises(RefundExceedsPayment, match="Nothing is left"):
        refund_of(payment)

    assert Refund.objects.count() == 1


def test_a_failed_refund_frees_its_amount_for_another(tenant):
    payment = paid(tenant, amount="1000")
    first = refund_of(payment)
    services.transfer_transition(transfer=first, target=Status.FAILED, actor=Actor.mtn())

    second = refund_of(payment)

    assert second.amount == Decimal("1000")


def test_a_refund_larger_than_the_available_balance_is_refused(tenant):
    payment = paid(tenant, amount="1000")
    ledger_adjust(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal("-800"),
        reason="paid out by hand",
        actor=Actor.system(),
    )

    with pytest.raises(InsufficientFunds):
        refund_of(payment, "500")

    nothing_refunded()
    assert available(tenant) == Decimal("200")


# --- the money ----------------------------------------------------------------------------------


def test_a_refund_reserves_its_amount_and_settles_it_on_success(tenant, mtn):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")

    assert (available(tenant), reserved(tenant)) == (Decimal("600"), Decimal("400"))

    services.transfer_transition(transfer=refund, target=Status.SUCCESSFUL, actor=Actor.mtn())

    assert (available(tenant), reserved(tenant)) == (Decimal("600"), Decimal("0"))
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("400")
    assert transfer_representation(payment)["amount_refunded"] == "400"
    assert ledger_verify() == []


def test_a_failed_refund_gives_its_amount_back(tenant):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")

    services.transfer_transition(transfer=refund, target=Status.FAILED, actor=Actor.mtn())

    assert (available(tenant), reserved(tenant)) == (Decimal("1000"), Decimal("0"))
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("0")
    assert ledger_verify() == []


def test_the_collection_fee_is_kept_and_not_given_back(tenant):
    tenant.collection_fee_percent = Decimal("2.5")
    tenant.save(update_fields=["collection_fee_percent"])
    fund_tenant(tenant, amount="100")  # the fee has to come from somewhere to refund it all
    payment = paid(tenant, amount="1010")  # 25.25 fee, rounded half-up to 25 UGX

    assert available(tenant) == Decimal("1085")  # 100 + 1010 - 25
    refund = refund_of(payment)

    assert refund.amount == Decimal("1010")
    assert available(tenant) == Decimal("75")


def test_a_payments_success_credits_the_tenant_once(tenant):
    tenant.collection_fee_percent = Decimal("1.5")
    tenant.save(update_fields=["collection_fee_percent"])
    payment = paid(tenant, amount="2000")  # 30 fee

    again = services.transfer_transition(
        transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn()
    )

    assert again.changed is False
    assert available(tenant) == Decimal("1970")
    assert LedgerTransaction.objects.filter(type="payment").count() == 1


def test_an_eur_refund_follows_the_currencys_decimals(tenant):
    payment = paid(tenant, amount="12.50", currency="EUR")
    refund = refund_of(payment, "2.5")
    services.transfer_transition(transfer=refund, target=Status.SUCCESSFUL, actor=Actor.mtn())

    payment.refresh_from_db()
    assert transfer_representation(payment)["amount_refunded"] == "2.50"
    assert transfer_representation(refund)["amount"] == "2.50"


def test_a_payout_reserves_at_creation_and_is_refused_without_funds(tenant):
    with pytest.raises(InsufficientFunds):
        services.transfer_create(
            model=Payout,
            tenant=tenant,
            actor=Actor.system(),
            amount=Decimal("1"),
            currency="UGX",
            party="256772123457",
        )

    assert not Payout.objects.exists()
    assert not AuditEvent.objects.filter(object_type="payout").exists()


@pytest.mark.parametrize(
    ("target", "after"), [(Status.SUCCESSFUL, Decimal("0")), (Status.FAILED, Decimal("1000"))]
)
def test_a_payout_settles_on_success_and_gives_back_on_failure(tenant, target, after):
    payout = queued(tenant, kind="payout")  # funded with exactly its amount
    assert (available(tenant), reserved(tenant)) == (Decimal("0"), Decimal("1000"))

    services.transfer_transition(transfer=payout, target=target, actor=Actor.mtn())

    assert (available(tenant), reserved(tenant)) == (after, Decimal("0"))
    assert ledger_verify() == []


# --- MTN ----------------------------------------------------------------------------------------


def test_a_refund_is_sent_to_mtns_disbursement_refund_once(tenant, mtn):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")

    services.transfer_submit(transfer=refund)
    services.transfer_submit(transfer=Refund.objects.get(pk=refund.pk))

    [call] = submits(mtn)
    assert call.request.url == REFUND
    assert call.request.headers["X-Reference-Id"] == str(refund.mtn_reference_id)
    assert json.loads(call.request.body) == {
        "amount": "400",
        "currency": "UGX",
        "externalId": str(refund.pk),
        "referenceIdToRefund": str(payment.mtn_reference_id),
        "payerMessage": "damaged",
        "payeeNote": "damaged",
    }
    assert Refund.objects.get(pk=refund.pk).submission == Submission.SUBMITTED


def test_a_refund_mtn_rejects_fails_and_gives_the_money_back(tenant, mtn):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")
    mtn.replace("POST", REFUND, status=500, json={"code": "NOT_ALLOWED", "message": "Not allowed."})

    result = services.transfer_submit(transfer=refund)

    assert (result.status, result.failure_code) == (Status.FAILED, "NOT_ALLOWED")
    assert available(tenant) == Decimal("1000")
    assert MerchantDelivery.objects.get(object_type="refund").event_type == "refund.failed"


@pytest.mark.parametrize(
    ("mtn_status", "event"), [("SUCCESSFUL", "succeeded"), ("FAILED", "failed")]
)
def test_a_polled_refund_is_settled_with_its_webhook(tenant, mtn, mtn_status, event):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")
    services.transfer_submit(transfer=refund)
    refund = Refund.objects.select_related("tenant").get(pk=refund.pk)
    mtn.get(status_url(refund), json=mtn_status_body(refund, mtn_status, reason="EXPIRED"))

    result = services.transfer_poll(transfer=refund)

    assert result.status == mtn_status
    delivery = MerchantDelivery.objects.get(object_type="refund")
    assert delivery.event_type == f"refund.{event}"
    assert delivery.payload["data"]["id"] == str(refund.pk)
    assert delivery.payload["data"]["payment"] == str(payment.pk)
    assert delivery.payload["data"]["status"] == mtn_status
    payment.refresh_from_db()
    assert payment.amount_refunded == (Decimal("400") if event == "succeeded" else 0)


def test_a_final_refund_never_changes(tenant, mtn):
    payment = paid(tenant, amount="1000")
    refund = refund_of(payment, "400")
    services.transfer_transition(transfer=refund, target=Status.SUCCESSFUL, actor=Actor.mtn())
    refund = Refund.objects.select_related("tenant").get(pk=refund.pk)

    with pytest.raises(InvalidTransition):
        services.transfer_transition(transfer=refund, target=Status.FAILED, actor=Actor.mtn())
    result = services.transfer_apply_mtn_status(
        transfer=refund,
        mtn_status=parse_transaction_status(mtn_status_body(refund, "FAILED")),
        source="test",
    )

    # MTN's contradiction is flagged, never applied: the status and the money stay.
    assert result.outcome == services.Applied.CONTRADICTED
    assert Refund.objects.get(pk=refund.pk).status == Status.SUCCESSFUL
    assert Refund.objects.get(pk=refund.pk).needs_review is True
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("400")
    assert (available(tenant), reserved(tenant)) == (Decimal("600"), Decimal("0"))
    assert sorted(
        MerchantDelivery.objects.filter(object_type="refund").values_list("event_type", flat=True)
    ) == ["refund.needs_review", "refund.succeeded"]


def test_a_payout_from_before_the_ledger_ends_without_touching_it(tenant):
    # Stored as payouts were before the ledger existed: no reservation was ever posted.
    payout = Payout.objects.create(
        tenant=tenant, amount=Decimal("700"), currency="UGX", payee="256772123457"
    )
    fund_tenant(tenant, amount="5")

    services.transfer_transition(transfer=payout, target=Status.FAILED, actor=Actor.mtn())

    assert Payout.objects.get(pk=payout.pk).status == Status.FAILED
    assert (available(tenant), reserved(tenant)) == (Decimal("5"), Decimal("0"))
    assert not LedgerTransaction.objects.filter(source_object="payout").exists()
