"""Fixtures for the payment services: MTN mocked with ``responses``, payments in known states."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import responses
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from payments import services
from payments.models import MoneyTransfer, Payment, Payout
from payments.states import Status, Submission

MTN_BASE = "https://mtn.test"
REQUESTTOPAY = f"{MTN_BASE}/collection/v1_0/requesttopay"
TRANSFER = f"{MTN_BASE}/disbursement/v1_0/transfer"
REFUND = f"{MTN_BASE}/disbursement/v1_0/refund"


def queued(tenant: Any, *, kind: str = "payment", amount: str = "1000", currency: str = "UGX"):
    model = Payment if kind == "payment" else Payout
    if model is Payout:
        fund_tenant(tenant, currency, amount)  # a payout reserves its amount from the balance
    return services.transfer_create(
        model=model,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(amount),
        currency=currency,
        party="256772123456",
        description="Order 42",
    )


def submitted(tenant: Any, *, kind: str = "payment", **kwargs: Any) -> MoneyTransfer:
    transfer = queued(tenant, kind=kind, **kwargs)
    type(transfer).objects.filter(pk=transfer.pk).update(
        submission=Submission.SUBMITTED,
        submitted_at=timezone.now(),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    return type(transfer).objects.select_related("tenant").get(pk=transfer.pk)


def status_url(transfer: MoneyTransfer) -> str:
    base = {"payment": REQUESTTOPAY, "payout": TRANSFER, "refund": REFUND}[transfer.kind]
    return f"{base}/{transfer.mtn_reference_id}"


def mtn_status_body(transfer: MoneyTransfer, status: str, **overrides: Any) -> dict[str, Any]:
    # A refund's status body names the payer it pays back as its payee (reference section 5).
    party_key = "payer" if transfer.kind == "payment" else "payee"
    body: dict[str, Any] = {
        "amount": format(transfer.amount.normalize(), "f"),
        "currency": transfer.currency,
        "externalId": str(transfer.pk),
        party_key: {"partyIdType": "MSISDN", "partyId": transfer.party},
        "payerMessage": "Order 42",
        "payeeNote": "Order 42",
        "status": status,
    }
    if status == "SUCCESSFUL":
        body["financialTransactionId"] = "987654321"
    body.update(overrides)
    return body


def submits(mock: responses.RequestsMock) -> list:
    return [
        c
        for c in mock.calls
        if c.request.method == "POST" and c.request.url in (REQUESTTOPAY, TRANSFER, REFUND)
    ]


def status_reads(mock: responses.RequestsMock) -> list:
    return [c for c in mock.calls if c.request.method == "GET"]


def paid(tenant: Any, *, amount: str = "1000", currency: str = "UGX") -> Payment:
    """A SUCCESSFUL payment: the tenant's balance is credited with it (less its fee)."""
    payment = submitted(tenant, amount=amount, currency=currency)
    services.transfer_transition(
        transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn(), data={"source": "test"}
    )
    return Payment.objects.select_related("tenant").get(pk=payment.pk)


def refund_of(payment: Payment, amount: str | None = None, reason: str | None = "damaged"):
    return services.refund_create(
        payment=payment,
        actor=Actor.system(),
        amount=Decimal(amount) if amount is not None else None,
        reason=reason,
    )
