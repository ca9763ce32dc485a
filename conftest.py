"""Fixtures shared by every app's tests (the Alice/Bob pattern: two tenants)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from rest_framework.test import APIClient

from gateway.audit import Actor
from ledger.services import ledger_adjust
from mtn.accounts import forget_clients
from payments import services
from tenants.services import tenant_create

# Redis outages through a proxy the test controls: dead_redis, silent_redis, redis_behind_proxy.
pytest_plugins = ["tests.outage"]


@dataclass
class TenantCredentials:
    tenant: object
    api_key: str
    client: APIClient


def _credentials(slug: str, name: str, webhook_url: str = "") -> TenantCredentials:
    tenant, issued = tenant_create(
        slug=slug, name=name, webhook_url=webhook_url, actor=Actor.system()
    )
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.raw_key, HTTP_X_TENANT_ID=slug)
    return TenantCredentials(tenant=tenant, api_key=issued.raw_key, client=client)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db) -> TenantCredentials:
    return _credentials("alice", "Alice Shop", webhook_url="https://alice.example.com/hooks")


@pytest.fixture
def bob(db) -> TenantCredentials:
    return _credentials("bob", "Bob Traders")


@pytest.fixture
def tenant(alice):
    return alice.tenant


@pytest.fixture
def other_tenant(bob):
    return bob.tenant


@pytest.fixture
def api_client(alice) -> APIClient:
    return alice.client


# Enough for any payout or refund the tests make (the largest amount a payment may have).
TEST_FUNDING = Decimal("1000000000")


def fund_tenant(tenant, currency: str = "UGX", amount: Decimal | str = TEST_FUNDING) -> None:
    """Credit a tenant's available balance, as an operator's pre-funding would."""
    ledger_adjust(
        tenant_id=tenant.pk,
        currency=currency,
        amount=Decimal(amount),
        reason="test funding",
        actor=Actor.system(),
    )


@pytest.fixture
def funded(alice, bob) -> None:
    """Alice and Bob hold enough in the tests' currencies to pay out and refund: payouts
    and refunds reserve their amount from the tenant's balance and are refused without."""
    for credentials in (alice, bob):
        for currency in ("UGX", "EUR"):
            fund_tenant(credentials.tenant, currency)


@pytest.fixture
def mtn_http(settings) -> Iterator[responses.RequestsMock]:
    """MTN at the HTTP level, answering like the real API: tokens, 202s and statuses."""
    settings.MTN_BASE_URL = "https://mtn.test"
    base = settings.MTN_BASE_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for product in ("collection", "disbursement"):
            mock.post(
                f"{base}/{product}/token/",
                json={
                    "access_token": f"token-{product}",
                    "token_type": "access_token",
                    "expires_in": 3600,
                },
            )
        mock.post(f"{base}/collection/v1_0/requesttopay", status=202)
        mock.post(f"{base}/disbursement/v1_0/transfer", status=202)
        mock.post(f"{base}/disbursement/v1_0/refund", status=202)
        yield mock


@pytest.fixture(autouse=True)
def _fresh_mtn_clients() -> Iterator[None]:
    """Each test builds its MTN clients afresh (they are cached per thread and settings)."""
    services._client_local.__dict__.pop("clients", None)
    forget_clients()
    yield
    services._client_local.__dict__.pop("clients", None)
    forget_clients()


@pytest.fixture(autouse=True)
def _fresh_mtn_limits() -> Iterator[None]:
    """Each test starts with every MTN account's limits untouched: a 429 in one test slows
    its account down (for as long as MTN asked), in this process and in Redis."""
    from django.core.cache import cache

    from mtn.limits import forget_local_state

    def forget() -> None:
        forget_local_state()
        delete_pattern = getattr(cache, "delete_pattern", None)
        if delete_pattern is not None:
            try:
                delete_pattern("*mtn:limits:*")
            except Exception:  # noqa: BLE001 - a test that cut Redis on purpose
                return

    forget()
    yield
    forget()


@pytest.fixture
def mtn(mtn_http, settings) -> responses.RequestsMock:
    """``mtn_http`` with one try per MTN call (nothing sleeps), no callback URL, and merchant
    webhooks allowed to `responses`' hosts (so nothing asks real DNS about example.com)."""
    settings.MTN_SUBMIT_MAX_TRIES = 1
    settings.MTN_CALLBACK_URL = ""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 60
    return mtn_http


def dispatch() -> dict[str, int]:
    """Run the worker's dispatcher until nothing is due now (what ``run_worker --once`` does):
    a create only stores the payment; this is what sends it to MTN."""
    from shell.worker import Worker

    return Worker().drain()


def mtn_calls(mock: responses.RequestsMock, path_pattern: str) -> list:
    return [call for call in mock.calls if re.search(path_pattern, call.request.url)]
