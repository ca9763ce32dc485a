"""End-to-end fixtures: the MTN simulator in-process, a merchant endpoint, quick helpers.

The gateway's real MTN client talks to the simulator over loopback. Everything is tuned to
be fast: one MTN try per submission (the worker's schedule is the retry policy), short
timeouts, and no simulator delays.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import fund_tenant
from gateway.audit import Actor
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tenants.services import tenant_create

# pytest-django's live server listens here; it is the simulator's providerCallbackHost, so
# that MTN_CALLBACK_URL = live_server.url is accepted as MTN accepts a registered host.
LIVE_SERVER_HOST = "localhost"
PAYMENTS_URL = "/api/v1/payments"
PAYOUTS_URL = "/api/v1/payouts"
SUCCESS_MSISDN = "256772123456"


@pytest.fixture
def sim(settings) -> Iterator[SandboxHandle]:
    """The MTN simulator, with the gateway's settings pointed at it; polling only."""
    handle = start_sandbox(
        SandboxConfig(
            delay_seconds=0.05,
            seed=7,
            callback_timeout=5.0,
            provider_callback_host=LIVE_SERVER_HOST,
        )
    )
    settings.MTN_BASE_URL = handle.base_url
    settings.MTN_CALLBACK_URL = ""
    settings.MTN_SUBMIT_MAX_TRIES = 1
    settings.MTN_SUBMIT_MAX_SECONDS = 1.0
    settings.MTN_CONNECT_TIMEOUT = 1.0
    settings.MTN_READ_TIMEOUT = 2.0
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    yield handle
    handle.stop()


@pytest.fixture
def sim_with_callbacks(sim: SandboxHandle, live_server, settings) -> SandboxHandle:
    """The simulator calling back a live gateway on each payment's own URL."""
    assert urlsplit(live_server.url).hostname == sim.config.provider_callback_host
    settings.MTN_CALLBACK_URL = live_server.url
    return sim


# --- a merchant's webhook endpoint ------------------------------------------------------------


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class MerchantEndpoint:
    """A tiny HTTP server standing in for a merchant's webhook URL; answers ``status``."""

    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self.status = 200
        self.arrived = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with endpoint.arrived:
                    endpoint.received.append(
                        ReceivedWebhook(self.path, {k: v for k, v in self.headers.items()}, body)
                    )
                    endpoint.arrived.notify_all()
                payload = b'{"ok":true}'
                self.send_response(endpoint.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def merchant() -> Iterator[MerchantEndpoint]:
    endpoint = MerchantEndpoint()
    yield endpoint
    endpoint.stop()


@dataclass
class Shop:
    tenant: Any
    client: APIClient


@pytest.fixture
def shop(db, merchant: MerchantEndpoint) -> Shop:
    """A tenant whose webhook URL is the local merchant endpoint."""
    tenant, issued = tenant_create(
        slug="shop", name="Shop", webhook_url=merchant.url, actor=Actor.system()
    )
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.raw_key, HTTP_X_TENANT_ID="shop")
    fund_tenant(tenant, "EUR", "100000")  # pre-funded, so that its payouts can reserve
    return Shop(tenant=tenant, client=client)


# --- helpers ----------------------------------------------------------------------------------

_keys = iter(range(1, 1_000_000))


def create(
    client: APIClient,
    *,
    party: str = SUCCESS_MSISDN,
    kind: str = "payment",
    submit: bool = True,
    prefer: str | None = None,
    **extra: Any,
) -> Any:
    """POST a payment (or payout) of 12.50 EUR, the simulator's sandbox currency; then, as
    ``run_worker`` does at once, let the dispatcher submit it (``submit``). The create
    itself answers without calling MTN (``Prefer: wait`` aside)."""
    body = {"amount": "12.50", "currency": "EUR", "description": "Order 42", **extra}
    body["payer" if kind == "payment" else "payee"] = party
    url = PAYMENTS_URL if kind == "payment" else PAYOUTS_URL
    headers = {"HTTP_PREFER": prefer} if prefer else {}
    response = client.post(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"e2e-{next(_keys)}",
        **headers,
    )
    if submit and response.status_code == 201:
        dispatch_submissions(kind)
    return response


def dispatch_submissions(kind: str = "payment") -> dict[str, int]:
    """One round of the worker's dispatcher for ``kind``'s due rows (a new one is due now)."""
    from shell.worker import Worker

    return Worker(only=(kind,)).run_once()


def confirm_callbacks() -> dict[str, int]:
    """One round of the dispatcher for the callbacks the doors stored: confirm and apply."""
    from shell.worker import Worker

    return Worker(only=("callback",)).run_once()


def make_due(obj: Any) -> None:
    """Move a row's ``next_attempt_at`` into the past instead of waiting for it."""
    type(obj).objects.filter(pk=obj.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, *, drive_callbacks: bool = True
) -> Any:
    """Poll ``predicate`` until it holds; meanwhile the dispatcher confirms the callbacks MTN
    sends (as a running ``run_worker`` would)."""
    deadline = time.monotonic() + timeout
    while True:
        if drive_callbacks:
            confirm_callbacks()
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
