"""Payout batches end to end: the worker sends every item to the MTN simulator exactly once.

The batch's request calls no MTN; ``run_worker`` submits its items (today's worker, or the
dispatcher that replaces it) and polls them until final.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from gateway.audit import Actor
from ledger.selectors import balance_get, ledger_verify
from payments.models import Payout, PayoutBatch
from tenants.services import api_key_create
from webhooks.models import MerchantDelivery

from .conftest import SUCCESS_MSISDN, make_due, wait_until

pytestmark = pytest.mark.e2e

BATCHES_URL = "/api/v1/payout_batches"
FAILING_PAYEE = "46733123450"  # the simulator fails a transfer to it at once


def _drain() -> dict[str, int]:
    out = io.StringIO()
    call_command("run_worker", "--once", stdout=out)
    done: dict[str, int] = json.loads(out.getvalue())["done"]
    return done


def test_the_worker_pays_every_item_once_and_the_batch_completes(sim, shop, merchant, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    payees = [SUCCESS_MSISDN] * 4 + [FAILING_PAYEE]
    body = {
        "currency": "EUR",
        "reference": "payroll",
        "items": [
            {"payee": payee, "amount": "10.00", "reference": f"emp-{n}"}
            for n, payee in enumerate(payees)
        ],
    }
    response = shop.client.post(
        BATCHES_URL, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="b1"
    )
    assert response.status_code == 201, response.content
    batch_id = response.json()["id"]
    assert all(sim.state.post_count(p.mtn_reference_id) == 0 for p in Payout.objects.all())

    for _ in range(5):
        _drain()
        for payout in Payout.objects.filter(status="PENDING"):
            make_due(payout)
        if not PayoutBatch.objects.filter(pk=batch_id, status="PROCESSING").exists():
            break
    _drain()  # deliver what the last round wrote

    batch = shop.client.get(f"{BATCHES_URL}/{batch_id}").json()
    assert batch["status"] == "COMPLETED"
    assert batch["counts"] == {"PENDING": 0, "SUCCESSFUL": 4, "FAILED": 1}
    assert batch["amount_succeeded"] == "40.00"
    for payout in Payout.objects.all():
        assert sim.state.post_count(payout.mtn_reference_id) == 1
    assert wait_until(
        lambda: any(w.json()["type"] == "payout_batch.completed" for w in merchant.received)
    )
    types = Counter(w.json()["type"] for w in merchant.received)
    assert types == {"payout.succeeded": 4, "payout.failed": 1, "payout_batch.completed": 1}
    assert MerchantDelivery.objects.filter(event_type="payout_batch.completed").count() == 1
    balance = balance_get(tenant_id=shop.tenant.pk, currency="EUR")
    assert (balance.available, balance.reserved) == (Decimal("100000") - 40, Decimal(0))
    assert ledger_verify() == []


def test_a_batch_sent_chunked_is_read_up_to_its_own_limit(live_server, shop, settings):
    import requests

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # a payment's limit: the batch is far larger
    lines = ["payee,amount,reference,description"]
    lines += [f"2567720{n:05d},1.00,emp-{n},December salary" for n in range(300)]
    raw = ("\n".join(lines) + "\n").encode()
    key = api_key_create(tenant=shop.tenant, actor=Actor.system()).raw_key

    def chunks() -> Any:
        for start in range(0, len(raw), 4096):
            yield raw[start : start + 4096]

    response = requests.post(
        f"{live_server.url}{BATCHES_URL}?currency=EUR",
        data=chunks(),
        headers={
            "X-API-Key": key,
            "X-Tenant-ID": "shop",
            "Idempotency-Key": "chunked",
            "Content-Type": "text/csv",
        },
        timeout=30,
    )

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["count"] == 300
