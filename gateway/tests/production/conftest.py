"""A full payment through the API, MTN mocked at the HTTP level: what metrics and logs see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from payments.models import Payment
from shell.worker import Worker

MTN_BASE = "https://mtn.test"
MERCHANT_URL = "https://alice.example.com/hooks"
PAYER = "256772123456"
PAYER_MASKED = "*********456"


@dataclass
class FullPayment:
    payment: Payment
    create_response: Any
    callback_response: Any


def _status_body(payment: Payment, status: str) -> dict[str, Any]:
    # MTN's status JSON (reference section 4.2); callbacks carry the same (section 8.1).
    return {
        "financialTransactionId": "2005842117",
        "externalId": str(payment.id),
        "amount": "1000",
        "currency": "UGX",
        "payer": {"partyIdType": "MSISDN", "partyId": PAYER},
        "payerMessage": "Order 42",
        "payeeNote": "Order 42",
        "status": status,
    }


@pytest.fixture
def full_payment(alice, mtn_http, settings) -> Callable[[], FullPayment]:
    """Create → MTN accepts → MTN calls back → confirmed → merchant webhook delivered."""
    settings.MTN_SUBMIT_MAX_TRIES = 1
    settings.MTN_CALLBACK_URL = "https://pay.example.com"
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True

    def run() -> FullPayment:
        created = alice.client.post(
            "/api/v1/payments",
            json.dumps(
                {"amount": 1000, "currency": "UGX", "payer": PAYER, "description": "Order 42"}
            ),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="order-42",
        )
        assert created.status_code == 201, created.content
        payment = Payment.objects.get(pk=created.json()["id"])
        mtn_http.get(
            f"{MTN_BASE}/collection/v1_0/requesttopay/{payment.mtn_reference_id}",
            json=_status_body(payment, "SUCCESSFUL"),
        )
        mtn_http.post(MERCHANT_URL, status=200)
        callback = Client().put(
            f"/api/v1/webhooks/mtn/{payment.callback_token}",
            json.dumps(_status_body(payment, "SUCCESSFUL")),
            content_type="application/json",
        )
        assert callback.status_code == 200, callback.content
        Worker().run_once()  # the merchant webhook
        payment.refresh_from_db()
        assert payment.status == "SUCCESSFUL"
        return FullPayment(payment=payment, create_response=created, callback_response=callback)

    return run
