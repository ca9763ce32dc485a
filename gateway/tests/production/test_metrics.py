"""/metrics: payment counts from the database, MTN latency and errors, callbacks, deliveries,
due work and rate limits; and who may read it."""

from __future__ import annotations

import json

import pytest
import responses
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conftest import dispatch
from gateway import metrics
from gateway.tests.production.conftest import MTN_BASE, PAYER

TOKEN = "scrape-token-0123456789"


def scrape(settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    settings.METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.django_db
def test_metrics_count_a_new_payment_and_time_its_mtn_call(alice, mtn_http, settings):
    settings.MTN_SUBMIT_MAX_TRIES = 1
    before = scrape(settings)

    created = alice.client.post(
        "/api/v1/payments",
        json.dumps({"amount": 1000, "currency": "UGX", "payer": PAYER}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="order-1",
    )
    stored = scrape(settings)
    assert value(stored, "momo_due_work", kind="payment") == 1  # due for the dispatcher
    dispatch()
    after = scrape(settings)

    assert created.status_code == 201
    assert value(after, "momo_payments", status="PENDING", currency="UGX") == 1
    assert value(after, "momo_payouts", status="PENDING", currency="UGX") == 0
    assert value(after, "momo_database_up") == 1
    call = {"product": "collection", "operation": "requesttopay"}
    assert grew(before, after, "momo_mtn_call_duration_seconds_count", **call) == 1
    assert value(after, "momo_mtn_call_duration_seconds_sum", **call) > 0
    assert grew(before, after, "momo_mtn_calls_total", status="202", **call) == 1
    token = {"product": "collection", "operation": "token", "status": "200"}
    assert grew(before, after, "momo_mtn_calls_total", **token) == 1
    # Submitted: nothing is due until the first status poll.
    assert value(after, "momo_due_work", kind="payment") == 0


@pytest.mark.django_db
def test_metrics_follow_a_full_payment_callback_and_webhook(full_payment, settings):
    before = scrape(settings)

    full_payment()
    after = scrape(settings)

    assert value(after, "momo_payments", status="SUCCESSFUL", currency="UGX") == 1
    assert value(after, "momo_payments", status="PENDING", currency="UGX") == 0
    assert grew(before, after, "momo_mtn_callbacks_total", door="token", outcome="applied") == 1
    status_call = {"product": "collection", "operation": "requesttopay_status"}
    assert grew(before, after, "momo_mtn_call_duration_seconds_count", **status_call) == 1
    assert grew(before, after, "momo_webhook_delivery_attempts_total", result="succeeded") == 1
    assert value(after, "momo_webhook_deliveries", state="succeeded") == 1
    assert value(after, "momo_due_work", kind="webhook") == 0
    assert value(after, "momo_due_work_lag_seconds", kind="webhook") == 0


@pytest.mark.django_db
def test_metrics_count_mtn_errors_by_operation_and_code(alice, mtn_http, settings):
    settings.MTN_SUBMIT_MAX_TRIES = 1
    mtn_http.replace(
        responses.POST,
        f"{MTN_BASE}/collection/v1_0/requesttopay",
        status=500,
        json={"code": "INVALID_CURRENCY", "message": "Currency not supported."},
    )
    before = scrape(settings)

    created = alice.client.post(
        "/api/v1/payments",
        json.dumps({"amount": 1000, "currency": "UGX", "payer": PAYER}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="order-2",
        HTTP_PREFER="wait=5",
    )
    after = scrape(settings)

    assert created.json()["status"] == "FAILED"
    errors = {"product": "collection", "operation": "requesttopay", "code": "INVALID_CURRENCY"}
    assert grew(before, after, "momo_mtn_call_errors_total", **errors) == 1
    assert value(after, "momo_payments", status="FAILED", currency="UGX") == 1


@pytest.mark.django_db
def test_metrics_count_rate_limit_rejections(alice, settings):
    alice.tenant.rate_limit = "1/h"  # an hour: no window boundary between the two calls
    alice.tenant.save(update_fields=["rate_limit"])
    before = scrape(settings)

    statuses = [alice.client.get("/api/v1/payments").status_code for _ in range(2)]
    after = scrape(settings)

    assert statuses == [200, 429]
    assert grew(before, after, "momo_rate_limited_requests_total", scope="api") == 1


@pytest.mark.django_db
def test_due_work_lag_measures_the_oldest_overdue_row(alice, mtn_http, settings):
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import Payment

    settings.MTN_SUBMIT_MAX_TRIES = 1
    alice.client.post(
        "/api/v1/payments",
        json.dumps({"amount": 1000, "currency": "UGX", "payer": PAYER}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="order-3",
    )
    Payment.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    after = scrape(settings)

    assert value(after, "momo_due_work", kind="payment") == 1
    assert 299 <= value(after, "momo_due_work_lag_seconds", kind="payment") < 400


@pytest.mark.django_db
def test_metrics_refuse_a_missing_or_wrong_token(settings):
    settings.METRICS_TOKEN = TOKEN

    missing = Client().get("/metrics")
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    right = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert [missing.status_code, wrong.status_code, basic.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"momo_" not in missing.content
    assert right.status_code == 200


@pytest.mark.django_db
def test_metrics_are_not_there_without_a_token_when_debug_is_off(settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False

    assert Client().get("/metrics").status_code == 404


@pytest.mark.django_db
def test_metrics_are_open_without_a_token_in_development(settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = True

    assert Client().get("/metrics").status_code == 200


def test_a_failing_observer_never_breaks_an_mtn_call(monkeypatch):
    from mtn import client

    def broken(**kwargs):
        raise RuntimeError("metrics are down")

    monkeypatch.setattr(client, "call_observers", [broken, metrics.observe_mtn_call])

    client._notify("GET", "/collection/v1_0/requesttopay/abc", 200, None, 0.0)  # no raise


def test_operation_names_carry_no_ids_or_numbers(monkeypatch):
    from mtn import client

    seen: list[dict] = []
    monkeypatch.setattr(client, "call_observers", [lambda **call: seen.append(call)])

    client._notify("POST", "/collection/token/", 200, None, 0.0)
    client._notify("GET", "/disbursement/v1_0/transfer/5f0c-ref", None, "TIMEOUT", 0.0)
    client._notify("GET", f"/collection/v1_0/accountholder/msisdn/{PAYER}/active", 200, None, 0.0)

    assert [(c["product"], c["operation"]) for c in seen] == [
        ("collection", "token"),
        ("disbursement", "transfer_status"),
        ("collection", "accountholder"),
    ]
    assert seen[1]["status_code"] is None
    assert seen[1]["code"] == "TIMEOUT"


@pytest.mark.django_db
def test_refunds_are_counted_by_status_and_currency_and_as_due_work(alice, settings):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from payments.models import Payment, Refund

    # Rows written directly: what is measured here is the scrape's reading of the table.
    payment = Payment.objects.create(
        tenant=alice.tenant, amount=Decimal(1000), currency="UGX", payer=PAYER, status="SUCCESSFUL"
    )
    Refund.objects.create(
        tenant=alice.tenant, payment=payment, payer=PAYER, amount=Decimal(300), currency="UGX"
    )
    Refund.objects.create(
        tenant=alice.tenant,
        payment=payment,
        payer=PAYER,
        amount=Decimal(200),
        currency="UGX",
        status="FAILED",
        needs_review=True,
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )

    after = scrape(settings)

    assert value(after, "momo_refunds", status="PENDING", currency="UGX") == 1
    assert value(after, "momo_refunds", status="FAILED", currency="UGX") == 1
    assert value(after, "momo_refunds_needing_review") == 1
    assert value(after, "momo_due_work", kind="refund") == 1
    assert 299 <= value(after, "momo_due_work_lag_seconds", kind="refund") < 400
    assert value(after, "momo_payouts", status="PENDING", currency="UGX") == 0
