"""Which MTN account a payment, payout or refund goes through (payments/routing.py).

The contract's order: the tenant's own account for the currency, the platform's account for
it, ``default``; a refund takes its payment's account; the choice is recorded and kept.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import fund_tenant
from gateway.audit import Actor
from ledger.models import LedgerTransaction
from mtn.accounts import mtn_account_set
from payments import routing
from payments.models import Payment, Payout
from payments.routing import transfer_account_route
from payments.services import (
    refund_create,
    transfer_create,
    transfer_transition,
    uses_platform_money,
)
from payments.services.common import callback_url_for
from payments.states import Status
from tenants import key_cache

pytestmark = pytest.mark.django_db

CREDENTIALS = {
    "collection": {
        "subscription_key": "sub",
        "api_user": "2b4d6f80-1a3c-4e5f-8a7b-9c0d1e2f3a4b",
        "api_key": "key",
    },
    "disbursement": {
        "subscription_key": "dsub",
        "api_user": "4d6f802b-3c1a-4e5f-9b7a-0c9d1e2f3a4b",
        "api_key": "dkey",
    },
}


def account(name: str, currencies: list[str], *, tenant: Any = None, **extra: Any) -> None:
    environment = {"UGX": "mtnuganda", "GHS": "mtnghana"}.get(currencies[0], "sandbox")
    mtn_account_set(
        name=name,
        target_environment=environment,
        currencies=currencies,
        credentials=CREDENTIALS,
        base_url="https://mtn.test",
        tenant_slug=tenant.slug if tenant is not None else None,
        actor=Actor.system(),
        **extra,
    )


@pytest.fixture(params=["per-query", "cached"])
def routes(request, monkeypatch) -> str:
    """Both ways of routing: a query each time (no shared cache), and the cached claims (as
    with Redis; the in-process cache stands in for it here)."""
    routing.forget_routes()
    if request.param == "cached":
        monkeypatch.setattr(key_cache, "in_use", lambda: True)
    yield request.param
    routing.forget_routes()


def test_the_tenants_own_account_then_the_platforms_then_default(routes, tenant, other_tenant):
    account("platform-ug", ["UGX"])
    account("alice-ug", ["UGX"], tenant=tenant)
    account("alice-gh", ["GHS"], tenant=tenant)

    assert transfer_account_route(tenant_id=tenant.pk, currency="UGX") == "alice-ug"
    assert transfer_account_route(tenant_id=other_tenant.pk, currency="UGX") == "platform-ug"
    assert transfer_account_route(tenant_id=tenant.pk, currency="GHS") == "alice-gh"
    assert transfer_account_route(tenant_id=other_tenant.pk, currency="GHS") == "default"
    assert transfer_account_route(tenant_id=tenant.pk, currency="EUR") == "default"


def test_without_any_account_everything_goes_through_default(routes, tenant):
    assert transfer_account_route(tenant_id=tenant.pk, currency="UGX") == "default"


def test_cached_routes_cost_no_query_and_follow_a_new_account_at_once(monkeypatch, tenant):
    monkeypatch.setattr(key_cache, "in_use", lambda: True)
    routing.forget_routes()
    assert transfer_account_route(tenant_id=tenant.pk, currency="UGX") == "default"  # warm

    with CaptureQueriesContext(connection) as warm:
        assert transfer_account_route(tenant_id=tenant.pk, currency="UGX") == "default"
    account("alice-ug", ["UGX"], tenant=tenant)  # moves the shared generation

    assert warm.captured_queries == []
    assert transfer_account_route(tenant_id=tenant.pk, currency="UGX") == "alice-ug"
    routing.forget_routes()


def test_the_account_is_recorded_at_creation_and_kept(tenant):
    before = transfer_create(
        model=Payment,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(1000),
        currency="UGX",
        party="256772123456",
    )
    account("alice-ug", ["UGX"], tenant=tenant)
    after = transfer_create(
        model=Payment,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(1000),
        currency="UGX",
        party="256772123456",
    )

    assert Payment.objects.get(pk=before.pk).mtn_account == "default"
    assert Payment.objects.get(pk=after.pk).mtn_account == "alice-ug"


def test_a_refund_takes_its_payments_account_whatever_routing_says_now(tenant):
    account("platform-ug", ["UGX"])
    payment = transfer_create(
        model=Payment,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(1000),
        currency="UGX",
        party="256772123456",
    )
    transfer_transition(transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn())
    account("alice-ug", ["UGX"], tenant=tenant)  # would now carry the tenant's new UGX

    refund = refund_create(payment=Payment.objects.get(pk=payment.pk), actor=Actor.system())

    assert payment.mtn_account == "platform-ug"
    assert refund.mtn_account == "platform-ug"


def test_only_a_tenant_owned_account_keeps_money_out_of_the_ledger(tenant):
    account("platform-ug", ["UGX"])
    account("alice-gh", ["GHS"], tenant=tenant)

    assert uses_platform_money(Payment(mtn_account="default")) is True
    assert uses_platform_money(Payment(mtn_account="platform-ug")) is True
    assert uses_platform_money(Payout(mtn_account="alice-gh")) is False


def test_a_tenant_owned_payout_is_not_refused_for_funds_and_posts_nothing(tenant, other_tenant):
    account("alice-gh", ["GHS"], tenant=tenant)
    before = LedgerTransaction.objects.count()

    payout = transfer_create(
        model=Payout,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal("50.00"),
        currency="GHS",
        party="233241234567",
    )
    transfer_transition(transfer=payout, target=Status.FAILED, actor=Actor.mtn())

    assert payout.mtn_account == "alice-gh"
    assert LedgerTransaction.objects.count() == before


def test_a_platform_payout_still_reserves(tenant):
    account("platform-ug", ["UGX"])
    fund_tenant(tenant, "UGX", "5000")
    before = LedgerTransaction.objects.count()

    payout = transfer_create(
        model=Payout,
        tenant=tenant,
        actor=Actor.system(),
        amount=Decimal(1000),
        currency="UGX",
        party="256772123456",
    )

    assert payout.mtn_account == "platform-ug"
    assert LedgerTransaction.objects.count() == before + 1


def test_the_callback_url_is_the_accounts_and_none_when_it_has_none(tenant, settings):
    settings.MTN_CALLBACK_URL = "https://platform.example.com"
    account("platform-ug", ["UGX"], callback_url="https://ug.example.com")
    account("alice-gh", ["GHS"], tenant=tenant)  # no callback URL: MTN is polled
    token = "t" * 43

    urls = {
        name: callback_url_for(Payment(mtn_account=name, callback_token=token))
        for name in ("default", "platform-ug", "alice-gh")
    }

    assert urls == {
        "default": f"https://platform.example.com/api/v1/webhooks/mtn/{token}",
        "platform-ug": f"https://ug.example.com/api/v1/webhooks/mtn/{token}",
        "alice-gh": None,
    }
