"""Helpers shared by the API tests of every app: request builders and "nothing happened"."""

from __future__ import annotations

import json
from typing import Any

import responses

from conftest import mtn_calls
from gateway.models import AuditEvent, IdempotencyKey
from payments.models import Payment, Payout

PAYMENTS_URL = "/api/v1/payments"
PAYOUTS_URL = "/api/v1/payouts"
MTN_BASE = "https://mtn.test"
REQUESTTOPAY_URL = f"{MTN_BASE}/collection/v1_0/requesttopay"
TRANSFER_URL = f"{MTN_BASE}/disbursement/v1_0/transfer"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


# payment_body(amount=OMIT) leaves the field out of the body.
OMIT: Any = _Omit()


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": 1000, "currency": "UGX", "payer": "256700000000"}
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not OMIT}


def payout_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": 1000, "currency": "UGX", "payee": "256700000001"}
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not OMIT}


def post_json(client: Any, url: str, body: Any, *, key: str | None = "key-1", **extra: Any) -> Any:
    """POST ``body`` as JSON text written by the test (so JSON numbers stay numbers)."""
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url, raw, content_type="application/json", **extra)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the contract's error envelope with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= {"code", "message", "fields"}
    return error


def assert_validation_error(response: Any, *fields: str) -> dict[str, list[str]]:
    """A 400 ``validation_error`` naming exactly ``fields``, each with at least one message."""
    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == set(fields), error
    for messages in error["fields"].values():
        assert messages
        assert all(isinstance(message, str) and message for message in messages)
    return error["fields"]


def transfer_events_count() -> int:
    return AuditEvent.objects.filter(object_type__in=["payment", "payout"]).count()


def assert_nothing_created(mtn_http: responses.RequestsMock | None = None) -> None:
    """No payment or payout, no idempotency key, no audit event for them, no call to MTN."""
    assert Payment.objects.count() == 0
    assert Payout.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0
    assert transfer_events_count() == 0
    if mtn_http is not None:
        assert mtn_calls(mtn_http, "requesttopay") == []
        assert mtn_calls(mtn_http, "transfer") == []
