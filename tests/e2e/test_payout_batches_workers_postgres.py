"""A payout batch and real ``run_worker`` processes, on PostgreSQL: a SIGKILL in the middle of
a batch, and another tenant's payout sent while a big batch is going out.

These drive ``manage.py run_worker`` as a separate process against the test database and the
MTN simulator, as production runs it. The kill test holds for any worker that keeps the
contract (rows with leases, one MTN reference per payout). The fairness test needs the
dispatcher to take tenants in turn: a worker that sent due rows oldest first failed it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from payments.models import Payout, PayoutBatch
from payments.services import transfer_create
from payments.states import Submission

from .conftest import SUCCESS_MSISDN, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

MANAGE = Path(django_settings.BASE_DIR) / "manage.py"
BATCHES_URL = "/api/v1/payout_batches"


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): the worker is another process")


def worker_env(sim: Any, **extra: str) -> dict[str, str]:
    """The worker process's environment: this test's database and the simulator."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MTN_BASE_URL": sim.base_url,
        "MTN_CALLBACK_URL": "",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3600",  # submissions are what these tests watch
        "MTN_SUBMIT_MAX_TRIES": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(MANAGE), "run_worker", "--idle-sleep", "0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_batch(client: Any, count: int, *, payee: str = SUCCESS_MSISDN) -> str:
    body = {
        "currency": "EUR",
        "items": [
            {"payee": payee, "amount": "1.00", "reference": f"emp-{n}"} for n in range(count)
        ],
    }
    response = client.post(
        BATCHES_URL, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="b"
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def queued(batch_id: str) -> int:
    return Payout.objects.filter(batch_id=batch_id, submission=Submission.QUEUED).count()


def test_sigkill_of_the_worker_mid_batch_sends_every_item_to_mtn_exactly_once(sim, shop):
    count = 200
    batch_id = create_batch(shop.client, count)
    env = worker_env(sim)

    first = start_worker(env)
    try:
        # Kill it for real (no clean-up of any kind) once it is well into the batch.
        assert wait_until(lambda: queued(batch_id) <= count - 20, timeout=120), "never started"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first, signal.SIGKILL)
    left_behind = queued(batch_id)
    assert 0 < left_behind < count, "kill the worker while the batch is in progress"
    # Its leases run out (as they would after the lease's time; here without the wait).
    Payout.objects.filter(batch_id=batch_id, submission=Submission.QUEUED).update(
        next_attempt_at=timezone.now()
    )

    second = start_worker(env)
    try:
        assert wait_until(lambda: queued(batch_id) == 0, timeout=300), f"{queued(batch_id)} left"
    finally:
        stop(second)

    items = list(Payout.objects.filter(batch_id=batch_id))
    references = {str(p.mtn_reference_id) for p in items}
    at_mtn = [tx for tx in sim.state.all_transactions() if tx["kind"] == "transfer"]
    # MTN holds exactly one transaction per item, under the item's own reference: none
    # missing, none twice (a resend after the kill meets MTN's 409 for the same reference).
    assert Counter(tx["reference_id"] for tx in at_mtn) == Counter(references)
    assert all(tx["post_count"] == 1 for tx in at_mtn)
    assert {tx["external_id"] for tx in at_mtn} == {str(p.pk) for p in items}
    assert PayoutBatch.objects.get(pk=batch_id).count == count


def test_another_tenants_payout_is_sent_while_a_big_batch_goes_out(sim, shop, alice):
    count = 500
    batch_id = create_batch(shop.client, count)
    env = worker_env(sim, MTN_RATE_LIMIT="50", MTN_MAX_IN_FLIGHT="8")
    worker = start_worker(env)
    try:
        assert wait_until(lambda: queued(batch_id) <= count - 20, timeout=120), "never started"
        # Stored due now, as every create is once the dispatcher sends them (issue 15).
        fund_tenant(alice.tenant, "EUR", "5.00")
        payout = transfer_create(
            model=Payout,
            tenant=alice.tenant,
            actor=Actor.system(),
            amount=Decimal("5.00"),
            currency="EUR",
            party=SUCCESS_MSISDN,
        )
        Payout.objects.filter(pk=payout.pk).update(next_attempt_at=timezone.now())
        assert wait_until(
            lambda: Payout.objects.filter(pk=payout.pk, submission="submitted").exists(),
            timeout=60,
        )
        # Sent while most of the batch was still waiting: the batch did not starve it.
        still_waiting = queued(batch_id)
    finally:
        stop(worker)
    assert still_waiting > count // 2, still_waiting
