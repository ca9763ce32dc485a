"""Helpers for the callback and merchant-webhook tests: payments in a known state, MTN-shaped
callback bodies, signed requests, and a snapshot of "everything that could have changed"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.conf import settings
from django.test import Client
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.models import AuditEvent
from payments import services
from payments.models import MoneyTransfer, Payment, Payout, Refund
from payments.states import Submission
from webhooks.models import DeliveryAttempt, MerchantDelivery, MtnCallback
from webhooks.signing import inbound_signature

MTN_BASE = "https://mtn.test"
SIGNED_DOOR = "/api/v1/webhooks/mtn"
PAYER = "256772123456"
PAYEE = "256772123457"


@pytest.fixture
def http() -> Client:
    """An anonymous client, as MTN (or its signing relay) is."""
    return Client()


def submitted(tenant: Any, *, kind: str = "payment", amount: str = "1000", currency="UGX"):
    """A payment (or payout) that MTN accepted and that waits for its final status."""
    model = Payment if kind == "payment" else Payout
    if model is Payout:
        fund_tenant(tenant, currency, amount)  # a payout reserves its amount from the balance
    transfer = services.transfer_create(
        model=model,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(amount),
        currency=currency,
        party=PAYER if kind == "payment" else PAYEE,
        description="Order 42",
    )
    model.objects.filter(pk=transfer.pk).update(
        submission=Submission.SUBMITTED,
        submitted_at=timezone.now(),
        next_attempt_at=timezone.now() + timedelta(seconds=60),
    )
    return model.objects.select_related("tenant").get(pk=transfer.pk)


@pytest.fixture
def payment(tenant) -> Payment:
    return submitted(tenant)


@pytest.fixture
def payout(tenant) -> Payout:
    return submitted(tenant, kind="payout")


@pytest.fixture
def refund(tenant) -> Refund:
    """A refund of a SUCCESSFUL payment, submitted to MTN and waiting for its final status."""
    paid = submitted(tenant)
    services.transfer_transition(transfer=paid, target="SUCCESSFUL", actor=Actor.mtn())
    created = services.refund_create(
        payment=Payment.objects.select_related("tenant").get(pk=paid.pk),
        actor=Actor.system(),
        amount=Decimal("400"),
        reason="damaged",
    )
    Refund.objects.filter(pk=created.pk).update(
        submission=Submission.SUBMITTED,
        submitted_at=timezone.now(),
        next_attempt_at=timezone.now() + timedelta(seconds=60),
    )
    return Refund.objects.select_related("tenant").get(pk=created.pk)


def mtn_body(transfer: MoneyTransfer, status: str = "SUCCESSFUL", **overrides: Any) -> dict:
    """The JSON MTN sends (status endpoint and callbacks share it): no reference id."""
    party_key = "payer" if transfer.kind == "payment" else "payee"
    body: dict[str, Any] = {
        "financialTransactionId": "1234567890",
        "externalId": str(transfer.pk),
        "amount": format(transfer.amount.normalize(), "f"),
        "currency": transfer.currency,
        party_key: {"partyIdType": "MSISDN", "partyId": transfer.party},
        "payerMessage": "Order 42",
        "payeeNote": "Order 42",
        "status": status,
    }
    if status != "SUCCESSFUL":
        body.pop("financialTransactionId")
    if status == "FAILED":
        body["reason"] = "APPROVAL_REJECTED"
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def status_url(transfer: MoneyTransfer) -> str:
    path = {
        "payment": "collection/v1_0/requesttopay",
        "payout": "disbursement/v1_0/transfer",
        "refund": "disbursement/v1_0/refund",
    }[transfer.kind]
    return f"{MTN_BASE}/{path}/{transfer.mtn_reference_id}"


def mtn_says(mock: responses.RequestsMock, transfer: MoneyTransfer, status: str, **kw: Any):
    """MTN's status endpoint answers ``status`` for this transfer (replacing earlier answers)."""
    url = status_url(transfer)
    mock.remove(responses.GET, url)
    mock.get(url, json=mtn_body(transfer, status, **kw))


def mtn_unreachable(mock: responses.RequestsMock, transfer: MoneyTransfer) -> None:
    import requests

    url = status_url(transfer)
    mock.remove(responses.GET, url)
    mock.get(url, body=requests.ConnectionError("connection refused"))


def status_calls(mock: responses.RequestsMock) -> int:
    return sum(
        1 for call in mock.calls if call.request.method == "GET" and "/v1_0/" in call.request.url
    )


def sign(raw: bytes) -> str:
    return inbound_signature(settings.MTN_WEBHOOK_SECRET, raw)


def confirm_callbacks() -> dict[str, int]:
    """What the worker's dispatcher does with the callbacks the doors stored: confirm each
    with MTN and apply it (the doors only store them and answer 200)."""
    from shell.worker import Worker

    return Worker(only=("callback",)).drain()


def post_signed(
    http: Client,
    body: Any,
    *,
    signature: str | None | object = ...,
    method: str = "post",
    confirm: bool = True,
) -> Any:
    """Send ``body`` (a dict, or the exact bytes) to the signed door; once it is answered 200,
    let the dispatcher confirm and apply what it stored (``confirm``)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = {}
    if signature is ...:
        signature = sign(raw)
    if signature is not None:
        extra["HTTP_X_SIGNATURE_256"] = signature
    response = getattr(http, method)(SIGNED_DOOR, raw, content_type="application/json", **extra)
    if confirm and response.status_code == 200:
        confirm_callbacks()
    return response


def post_token(
    http: Client, token: str, body: Any, *, method: str = "post", confirm: bool = True
) -> Any:
    """Send ``body`` to a per-payment door; then the dispatcher, as ``post_signed``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = getattr(http, method)(
        f"/api/v1/webhooks/mtn/{token}", raw, content_type="application/json"
    )
    if confirm and response.status_code == 200:
        confirm_callbacks()
    return response


@dataclass(frozen=True)
class Snapshot:
    """Everything a callback could change about one payment, and the rows it could add."""

    status: str
    failure_code: str
    needs_review: bool
    updated_at: Any
    audit_events: int
    deliveries: int
    callbacks: int
    attempts: int


def snapshot(transfer: MoneyTransfer | None = None) -> Snapshot:
    current = type(transfer).objects.get(pk=transfer.pk) if transfer else None
    return Snapshot(
        status=current.status if current else "",
        failure_code=current.failure_code if current else "",
        needs_review=current.needs_review if current else False,
        updated_at=current.updated_at if current else None,
        audit_events=AuditEvent.objects.count(),
        deliveries=MerchantDelivery.objects.count(),
        callbacks=MtnCallback.objects.count(),
        attempts=DeliveryAttempt.objects.count(),
    )


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
