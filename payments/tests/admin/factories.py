"""Rows for the admin tests, made through the services as the gateway makes them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.test import override_settings
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from payments.models import MoneyTransfer, Payment, Payout
from payments.services import transfer_create, transfer_transition
from payments.states import Status
from webhooks.delivery import delivery_attempt
from webhooks.models import MerchantDelivery, MtnCallback


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """The staff users' passwords need no strength here; PBKDF2 costs a second per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Untrusted text (a merchant's metadata, an MTN body) that the admin must escape.
HOSTILE = "<script>window.__xss = 1</script>"


def make_transfer(
    tenant: Any,
    *,
    model: type[MoneyTransfer] = Payment,
    amount: str = "1500",
    currency: str = "UGX",
    party: str = "256771234567",
    reference: str | None = "order-1001",
    metadata: dict[str, Any] | None = None,
) -> MoneyTransfer:
    if model is Payout:
        fund_tenant(tenant, currency, amount)  # a payout reserves its amount from the balance
    return transfer_create(
        model=model,
        tenant=tenant,
        actor=Actor.api_key("mgw_testkey0"),
        amount=Decimal(amount),
        currency=currency,
        party=party,
        reference=reference,
        metadata=metadata,
    )


def make_transfer_with_history(
    tenant: Any, *, model: type[MoneyTransfer] = Payment, **fields: Any
) -> MoneyTransfer:
    """A transfer made SUCCESSFUL by a (stored) MTN callback, whose merchant webhook was tried
    once and refused with HTTP 500: an audit trail, a callback, a delivery with an attempt."""
    transfer = make_transfer(tenant, model=model, metadata={"note": HOSTILE}, **fields)
    transfer_transition(
        transfer=transfer,
        target=Status.SUCCESSFUL,
        actor=Actor.mtn(),
        financial_transaction_id="987654321",
        data={"source": "callback"},
    )
    MtnCallback.objects.create(
        door=MtnCallback.Door.TOKEN,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": HOSTILE},
        raw_body=json.dumps(
            {
                "externalId": str(transfer.pk),
                "status": "SUCCESSFUL",
                "amount": str(transfer.amount),
                "currency": transfer.currency,
                "payerMessage": HOSTILE,
            }
        ),
        remote_addr="203.0.113.7",
        object_type=transfer.kind,
        object_id=transfer.pk,
        tenant=tenant,
        reported_status="SUCCESSFUL",
        confirmed_status="SUCCESSFUL",
        outcome=MtnCallback.Outcome.APPLIED,
        outcome_detail="Confirmed by MTN's status endpoint.",
        processed_at=timezone.now(),
    )
    delivery = MerchantDelivery.objects.get(object_type=transfer.kind, object_id=transfer.pk)
    if delivery.url:
        with (
            override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True),
            responses.RequestsMock() as merchant,
        ):
            merchant.post(delivery.url, status=500, body="merchant is down")
            delivery_attempt(delivery=delivery)
    return type(transfer).objects.get(pk=transfer.pk)


def make_payout_with_history(tenant: Any, **fields: Any) -> MoneyTransfer:
    return make_transfer_with_history(tenant, model=Payout, party="256779999999", **fields)
