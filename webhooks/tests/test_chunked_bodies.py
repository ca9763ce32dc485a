"""Callback bodies sent chunked (Transfer-Encoding: chunked, no Content-Length) are read,
on both doors, by Django's development server (``live_server``, as ``runserver``).

gateway/tests/production/test_outages.py sends the same through a real gunicorn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from webhooks.models import MtnCallback
from webhooks.signing import inbound_signature

from .conftest import SIGNED_DOOR, confirm_callbacks, mtn_body, mtn_says, submitted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def chunks(raw: bytes, size: int = 7) -> Iterator[bytes]:
    """``raw`` in small pieces: requests then sends it chunked, without Content-Length."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def post_chunked(url: str, raw: bytes, **headers: str) -> requests.Response:
    response = requests.post(url, data=chunks(raw), headers=headers, timeout=10)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    return response


def test_a_chunked_signed_callback_is_read_and_stored(live_server, settings):
    raw = json.dumps({"externalId": "5f0c0000-0000-0000-0000-000000000000", "status": "X"})
    raw_bytes = raw.encode()
    signature = inbound_signature(settings.MTN_WEBHOOK_SECRET, raw_bytes)

    response = post_chunked(
        live_server.url + SIGNED_DOOR, raw_bytes, **{"X-Signature-256": signature}
    )

    assert response.status_code == 200, response.text  # the signature covers the real body
    assert MtnCallback.objects.get().raw_body == raw


def test_a_chunked_callback_on_the_token_door_is_read_and_stored(live_server, tenant, mtn):
    mtn.add_passthru(live_server.url)  # MTN is mocked; the gateway itself is not
    payment = submitted(tenant)
    mtn_says(mtn, payment, "SUCCESSFUL")
    raw = json.dumps(mtn_body(payment, "SUCCESSFUL"))
    url = f"{live_server.url}/api/v1/webhooks/mtn/{payment.callback_token}"

    response = post_chunked(url, raw.encode())

    assert response.status_code == 200, response.text
    assert MtnCallback.objects.get().raw_body == raw
    confirm_callbacks()
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"


def test_an_oversized_chunked_body_is_413_on_the_dev_server(live_server, settings):
    raw = b'{"pad": "' + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'

    response = post_chunked(live_server.url + SIGNED_DOOR, raw)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert MtnCallback.objects.count() == 0
