"""Concurrent requests with one Idempotency-Key, for real: a live server on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses
from django.db import connection

from conftest import dispatch, mtn_calls
from gateway.models import IdempotencyKey
from payments.models import Payment
from payments.tests.helpers import PAYMENTS_URL, REQUESTTOPAY_URL

CONCURRENT_REQUESTS = 24

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrency is tested on PostgreSQL only"
    ),
]


def slow_mtn(request):
    # MTN takes a moment to answer, so that the other requests arrive while the first runs.
    time.sleep(0.3)
    return (202, {}, "")


def fire(url: str, headers: dict, body: str, count: int) -> list[requests.Response]:
    barrier = threading.Barrier(count)

    def send(_: int) -> requests.Response:
        barrier.wait(timeout=10)
        return requests.post(url, data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(send, range(count)))


def test_concurrent_requests_with_one_key_create_exactly_one_payment(alice, mtn_http, live_server):
    mtn_http.add_passthru(live_server.url)
    mtn_http.remove(responses.POST, REQUESTTOPAY_URL)
    mtn_http.add_callback(responses.POST, REQUESTTOPAY_URL, callback=slow_mtn)
    headers = {
        "X-API-Key": alice.api_key,
        "X-Tenant-ID": "alice",
        "Idempotency-Key": "one-key-many-requests",
        "Content-Type": "application/json",
        # The winner waits on (slow) MTN, holding the key while the others arrive.
        "Prefer": "wait=5",
    }
    body = json.dumps({"amount": 1000, "currency": "UGX", "payer": "256700000000"})

    answers = fire(live_server.url + PAYMENTS_URL, headers, body, CONCURRENT_REQUESTS)

    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses
    created = [answer.json() for answer in answers if answer.status_code == 201]
    assert created
    assert len({payment["id"] for payment in created}) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"]["code"] == "idempotency_key_in_use"
        assert answer.headers["X-Request-ID"]
    assert Payment.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1

    replay = requests.post(live_server.url + PAYMENTS_URL, data=body, headers=headers, timeout=30)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created[0]["id"]
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1
    dispatch()  # nothing is left to send
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1


def test_concurrent_requests_with_different_keys_create_one_payment_each(
    alice, mtn_http, live_server
):
    mtn_http.add_passthru(live_server.url)
    url = live_server.url + PAYMENTS_URL
    body = json.dumps({"amount": 1000, "currency": "UGX", "payer": "256700000000"})
    barrier = threading.Barrier(10)

    def send(index: int) -> requests.Response:
        headers = {
            "X-API-Key": alice.api_key,
            "X-Tenant-ID": "alice",
            "Idempotency-Key": f"key-{index}",
            "Content-Type": "application/json",
        }
        barrier.wait(timeout=10)
        return requests.post(url, data=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(send, range(10)))

    assert [answer.status_code for answer in answers] == [201] * 10
    assert len({answer.json()["id"] for answer in answers}) == 10
    assert Payment.objects.count() == 10
    assert len(mtn_calls(mtn_http, "requesttopay")) == 0  # stored; the dispatcher sends
    dispatch()
    assert len(mtn_calls(mtn_http, "requesttopay")) == 10
