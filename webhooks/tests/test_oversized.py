"""Oversized input: bodies over 64 KB are 413 ``payload_too_large`` on the payments API and
on both MTN callback doors, with nothing stored; headers past gunicorn's limits are refused
by gunicorn itself with a 4xx before the application sees them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from gateway.models import IdempotencyKey
from gateway.tests.production.helpers import production_secrets
from payments.models import Payment, Payout
from webhooks.models import MtnCallback
from webhooks.tests.conftest import SIGNED_DOOR, assert_error, post_signed, post_token, snapshot

LIMIT = 64 * 1024
ROOT = Path(django_settings.BASE_DIR)


def _json_of_size(size: int, **fields) -> bytes:
    """A JSON object of exactly ``size`` bytes (padded in a ``padding`` string)."""
    base = json.dumps({**fields, "padding": ""}).encode()
    assert len(base) <= size
    return json.dumps({**fields, "padding": "x" * (size - len(base))}).encode()


def _create(client, kind: str, raw: bytes, key: str):
    return client.generic(
        "POST",
        f"/api/v1/{kind}",
        raw,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _nothing_created(mtn_http) -> None:
    assert Payment.objects.count() == 0
    assert Payout.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0
    assert not [c for c in mtn_http.calls if "/v1_0/" in c.request.url]


@pytest.mark.parametrize("kind", ["payments", "payouts"])
def test_a_create_over_64_kb_is_413_and_stores_nothing(alice, mtn_http, kind):
    party = "payer" if kind == "payments" else "payee"
    raw = _json_of_size(LIMIT + 1, amount="10.00", currency="EUR", **{party: "256772123456"})

    response = _create(alice.client, kind, raw, key="big-1")

    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == LIMIT
    assert_error(response, 413, "payload_too_large")
    _nothing_created(mtn_http)


@pytest.mark.parametrize("kind", ["payments", "payouts"])
def test_a_create_of_exactly_64_kb_is_read_and_validated(alice, mtn_http, kind):
    party = "payer" if kind == "payments" else "payee"
    # Within the limit, so it is parsed; "padding" is not a field: 400, not 413.
    raw = _json_of_size(LIMIT, amount="10.00", currency="EUR", **{party: "256772123456"})

    response = _create(alice.client, kind, raw, key="big-2")

    assert_error(response, 400, "validation_error")
    assert response.json()["error"]["fields"]["padding"] == ["Unknown field."]
    _nothing_created(mtn_http)


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_signed_callback_over_64_kb_is_413_and_stores_nothing(http, payment, method):
    before = snapshot(payment)
    raw = _json_of_size(LIMIT + 1, externalId=str(payment.pk), status="SUCCESSFUL")

    response = post_signed(http, raw, method=method)  # correctly signed: size alone decides

    assert_error(response, 413, "payload_too_large")
    assert MtnCallback.objects.count() == 0
    assert snapshot(payment) == before


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_callback_over_64_kb_on_the_payment_door_is_413_and_stores_nothing(http, payment, method):
    before = snapshot(payment)
    raw = _json_of_size(LIMIT + 1, externalId=str(payment.pk), status="SUCCESSFUL")

    response = post_token(http, payment.callback_token, raw, method=method)

    assert_error(response, 413, "payload_too_large")
    assert MtnCallback.objects.count() == 0
    assert snapshot(payment) == before


# --- through gunicorn -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory) -> Iterator[str]:
    """gunicorn with gunicorn.conf.py and production settings; nothing here needs a table."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GUNICORN_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
    }
    env.update(
        {
            "DEBUG": "false",
            **production_secrets(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"sqlite:///{workdir / 'unused.sqlite3'}",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "2",
            "LOG_FORMAT": "plain",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = workdir / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{log.read_text()}")
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not answer:\n{log.read_text()}")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.e2e
def test_gunicorn_refuses_an_oversized_header_with_a_4xx(gunicorn):
    fine = requests.get(f"{gunicorn}/healthz", headers={"X-Note": "a" * 4000}, timeout=5)
    huge = requests.get(f"{gunicorn}/healthz", headers={"X-Note": "a" * 9000}, timeout=5)

    assert fine.status_code == 200
    # gunicorn's limit_request_field_size (8190 bytes) answers before Django runs.
    assert huge.status_code in (400, 431), huge.text
    assert "X-Request-ID" not in huge.headers  # never reached the application


@pytest.mark.e2e
def test_gunicorn_refuses_too_many_headers_and_an_oversized_request_line(gunicorn):
    many = requests.get(
        f"{gunicorn}/healthz", headers={f"X-H{i}": "1" for i in range(120)}, timeout=5
    )
    long_line = requests.get(f"{gunicorn}/healthz?q={'a' * 5000}", timeout=5)

    assert many.status_code in (400, 431), many.text
    assert long_line.status_code in (400, 414), long_line.text


@pytest.mark.e2e
def test_an_oversized_body_through_gunicorn_is_413(gunicorn):
    raw = _json_of_size(LIMIT + 1, externalId="0", status="SUCCESSFUL")

    response = requests.post(f"{gunicorn}{SIGNED_DOOR}", data=raw, timeout=10)

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.e2e
def test_a_chunked_body_cannot_slip_past_the_limit(gunicorn):
    # Without Content-Length, the body is read chunk by chunk (gateway.middleware's
    # ChunkedBodyMiddleware) and refused as soon as it passes the limit: never a 5xx.
    raw = _json_of_size(LIMIT * 4, externalId="0", status="SUCCESSFUL")

    response = requests.post(
        f"{gunicorn}{SIGNED_DOOR}", data=iter([raw[:1000], raw[1000:]]), timeout=10
    )

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in ("invalid_signature", "payload_too_large")
