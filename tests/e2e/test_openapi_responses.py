"""Real answers of every merchant endpoint, errors included, and real webhook bodies, checked
against the served OpenAPI document by a strict OpenAPI 3.0.3 validator
(``openapi-schema-validator``; see ``tests/openapi_strict.py``).

MTN is the simulator; the worker is driven by hand (``Worker().drain()``), so nothing here
assumes that a create has already called MTN.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.audit import Actor
from payments.models import Payment, Payout, Refund
from shell.worker import Worker
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_update
from tests.openapi_strict import ResponseChecker, check_component, served_document
from webhooks.models import MerchantDelivery

from .conftest import make_due, wait_until

pytestmark = pytest.mark.e2e

OK = "256772123456"
PAYMENT_FAILS = "46733123451"  # APPROVAL_REJECTED
PAYOUT_FAILS = "46733123455"  # NOT_ENOUGH_FUNDS
REFUND_FAILS = "46733123475"  # the payment succeeds, its refund fails (NOT_ENOUGH_FUNDS)


def settle(obj: Any) -> Any:
    """Drive the worker until MTN's outcome is applied (submission, then a status poll)."""
    for _ in range(6):
        obj.refresh_from_db()
        if obj.status != "PENDING":
            return obj
        make_due(obj)
        Worker().drain()
    obj.refresh_from_db()
    return obj


class Api:
    """A tenant's client whose every answer is checked against the document."""

    def __init__(self, client: APIClient, checker: ResponseChecker) -> None:
        self.client = client
        self.checker = checker
        self._keys = iter(range(1, 10_000))

    def get(self, path: str, **extra: Any) -> Any:
        return self.checker.check("GET", path, self.client.get(path, **extra))

    def post(self, path: str, body: Any, *, key: str | None = "new", **extra: Any) -> Any:
        if key == "new":
            key = f"openapi-{next(self._keys)}"
        if key is not None:
            extra["HTTP_IDEMPOTENCY_KEY"] = key
        raw = body if isinstance(body, str) else json.dumps(body)
        response = self.client.post(path, raw, content_type="application/json", **extra)
        return self.checker.check("POST", path, response)


@pytest.fixture
def checker(db) -> ResponseChecker:
    return ResponseChecker(served_document())


@pytest.fixture
def api(shop, checker, settings) -> Api:
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    return Api(shop.client, checker)


def _tenant(slug: str, checker: ResponseChecker, **options: Any) -> Api:
    tenant, issued = tenant_create(slug=slug, name=slug.title(), actor=Actor.system(), **options)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.raw_key}")
    return Api(client, checker)


def test_every_endpoint_answers_as_documented(sim, shop, api, checker, merchant, settings):
    # --- payments: created, settled both ways, listed, retrieved, their events ---------------
    created = api.post("/api/v1/payments", {"amount": "12.50", "currency": "EUR", "payer": OK})
    assert created.status_code == 201, created.content
    paid = settle(Payment.objects.get(pk=created.json()["id"]))
    assert paid.status == "SUCCESSFUL"
    failed = api.post(
        "/api/v1/payments", {"amount": "3.00", "currency": "EUR", "payer": PAYMENT_FAILS}
    )
    assert settle(Payment.objects.get(pk=failed.json()["id"])).status == "FAILED"
    for payment in (paid.pk, failed.json()["id"]):
        assert api.get(f"/api/v1/payments/{payment}").status_code == 200
        assert api.get(f"/api/v1/payments/{payment}/events").status_code == 200
    assert api.get("/api/v1/payments?status=FAILED").json()["results"][0]["failure_reason"]
    assert api.get("/api/v1/payments?limit=1").json()["next"]
    replay = api.post(
        "/api/v1/payments",
        {"amount": "1.00", "currency": "EUR", "payer": OK},
        key="replayed",
    )
    again = api.post(
        "/api/v1/payments",
        {"amount": "1.00", "currency": "EUR", "payer": OK},
        key="replayed",
    )
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == replay.json()

    # --- payouts ---------------------------------------------------------------------------
    payout = api.post("/api/v1/payouts", {"amount": "2.00", "currency": "EUR", "payee": OK})
    assert settle(Payout.objects.get(pk=payout.json()["id"])).status == "SUCCESSFUL"
    bad_payout = api.post(
        "/api/v1/payouts", {"amount": "2.00", "currency": "EUR", "payee": PAYOUT_FAILS}
    )
    assert settle(Payout.objects.get(pk=bad_payout.json()["id"])).status == "FAILED"
    for made in (payout, bad_payout):
        assert api.get(f"/api/v1/payouts/{made.json()['id']}").status_code == 200
        assert api.get(f"/api/v1/payouts/{made.json()['id']}/events").status_code == 200
    assert api.get("/api/v1/payouts?payee=%2B256772123456").status_code == 200

    # --- refunds ---------------------------------------------------------------------------
    refund = api.post(f"/api/v1/payments/{paid.pk}/refunds", {"amount": "2.50", "reason": "x"})
    assert refund.status_code == 201, refund.content
    assert settle(Refund.objects.get(pk=refund.json()["id"])).status == "SUCCESSFUL"
    to_fail = api.post(
        "/api/v1/payments", {"amount": "4.00", "currency": "EUR", "payer": REFUND_FAILS}
    )
    refund_paid = settle(Payment.objects.get(pk=to_fail.json()["id"]))
    bad_refund = api.post(f"/api/v1/payments/{refund_paid.pk}/refunds", {})
    assert settle(Refund.objects.get(pk=bad_refund.json()["id"])).status == "FAILED"
    for made in (refund, bad_refund):
        assert api.get(f"/api/v1/refunds/{made.json()['id']}").status_code == 200
        assert api.get(f"/api/v1/refunds/{made.json()['id']}/events").status_code == 200
    assert api.get(f"/api/v1/refunds?payment={paid.pk}").json()["results"]

    # --- payout batches ----------------------------------------------------------------------
    batch = api.post(
        "/api/v1/payout_batches",
        {
            "currency": "EUR",
            "reference": "payroll-12",
            "items": [
                {"payee": OK, "amount": "1.00", "reference": "emp-1"},
                {"payee": PAYOUT_FAILS, "amount": "1.50", "reference": "emp-2"},
            ],
        },
    )
    assert batch.status_code == 201, batch.content
    batch_id = batch.json()["id"]
    for item in Payout.objects.filter(batch_id=batch_id):
        settle(item)
    assert api.get(f"/api/v1/payout_batches/{batch_id}").json()["status"] == "COMPLETED"
    assert api.get("/api/v1/payout_batches?status=COMPLETED").json()["results"]
    assert len(api.get(f"/api/v1/payout_batches/{batch_id}/payouts").json()["results"]) == 2
    assert api.get(f"/api/v1/payout_batches/{batch_id}/payouts.csv").status_code == 200

    # --- balances, the statement in JSON and CSV, the payer look-up, health ----------------
    assert api.get("/api/v1/balance").status_code == 200
    assert api.get("/api/v1/balance/transactions?currency=EUR").status_code == 200
    csv_answer = api.get("/api/v1/balance/transactions.csv?type=payment")
    assert csv_answer.status_code == 200
    assert api.get("/api/v1/payers/256772123456?currency=EUR").status_code == 200
    assert api.get("/api/v1/webhooks/mtn/health").status_code == 200
    # The contract's ?format=csv answers the very bytes the CSV operation does.
    legacy = shop.client.get("/api/v1/balance/transactions?format=csv&type=payment")
    assert b"".join(legacy.streaming_content) == b"".join(csv_answer.streaming_content)

    # --- errors ----------------------------------------------------------------------------
    expect = {
        "validation_error": api.post("/api/v1/payments", {"amount": "-1", "currency": "EUR"}),
        "idempotency_key_missing": api.post("/api/v1/payouts", {}, key=None),
        "malformed_json": api.post(f"/api/v1/payments/{paid.pk}/refunds", "{not json"),
        "payload_too_large": api.post("/api/v1/payments", {"metadata": {"x": "y" * 70_000}}),
        "idempotency_key_reused": api.post(
            "/api/v1/payments", {"amount": "9.00", "currency": "EUR", "payer": OK}, key="replayed"
        ),
        "payment_not_refundable": api.post(f"/api/v1/payments/{failed.json()['id']}/refunds", {}),
        "refund_exceeds_payment": api.post(
            f"/api/v1/payments/{paid.pk}/refunds", {"amount": "100.00"}
        ),
        "not_found": api.get("/api/v1/refunds/0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e"),
    }
    expect["unknown query parameter"] = api.get("/api/v1/balance?stauts=x")
    expect["bad payer"] = api.get("/api/v1/payers/12?currency=EUR")
    settings.MTN_CURRENCIES = ("EUR",)
    expect["currency_not_supported"] = api.post(
        "/api/v1/payouts", {"amount": "5", "currency": "UGX", "payee": OK}
    )
    expect["currency_not_supported (look-up)"] = api.get("/api/v1/payers/256772123456?currency=UGX")
    anonymous = Api(APIClient(), checker)
    expect["authentication_failed"] = anonymous.get("/api/v1/balance/transactions.csv")
    poor = _tenant("poor", checker)
    expect["insufficient_funds"] = poor.post(
        "/api/v1/payouts", {"amount": "5.00", "currency": "EUR", "payee": OK}
    )
    suspended = _tenant("gone", checker)
    tenant_update(
        tenant=Tenant.objects.get(slug="gone"),
        changes={"is_active": False},
        previous={"is_active": True},
        actor=Actor.system(),
    )
    expect["tenant_suspended"] = suspended.get("/api/v1/refunds")
    busy = _tenant("busy", checker, rate_limit="1/m")
    busy.get("/api/v1/balance")
    expect["rate_limited"] = busy.get("/api/v1/balance")
    for name, response in expect.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.content)
        if not name.startswith(("unknown", "bad", "currency_not_supported (")):
            assert response.json()["error"]["code"] == name.split(" ")[0], name
    assert expect["rate_limited"].has_header("Retry-After")

    # --- every operation of the document answered 2xx at least once ------------------------
    document = checker.document
    every = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    succeeded = {op for op, statuses in checker.seen.items() if any(s[0] == "2" for s in statuses)}
    assert every - succeeded == set()

    # --- the webhook bodies the merchant received ------------------------------------------
    Worker().drain()
    wait_until(lambda: len(merchant.received) >= 6)
    bodies = [json.loads(delivery.body) for delivery in merchant.received]
    bodies += [d.payload for d in MerchantDelivery.objects.all()]
    types = set()
    for body in bodies:
        check_component(document, "WebhookEvent", body)
        types.add(body["type"])
    assert {"payment.succeeded", "payment.failed", "payout.failed", "refund.failed"} <= types
