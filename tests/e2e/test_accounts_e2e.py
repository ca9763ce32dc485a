"""MTN accounts end to end: the gateway's API, worker and callbacks against three simulators.

The platform's default account is the sandbox (EUR, the ``MTN_*`` settings); the platform's
Uganda market (``ug``, UGX) and the shop's own Uganda account (``shop-ug``, UGX) are two
more simulators, each accepting only its own credentials. Each payment, payout and refund
must reach exactly the MTN its recorded account names, with that account's headers, for
its submission, its status polls, its callback's confirmation and its refunds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from gateway.audit import Actor
from ledger.models import LedgerTransaction
from ledger.selectors import ledger_verify
from mtn.accounts import mtn_account_set
from mtn.sandbox import ProductCredentials, SandboxConfig, SandboxHandle, start_sandbox
from payments.models import Payment, Payout, Refund
from payments.services import transfer_recheck
from shell.worker import Worker
from tenants.services import tenant_create
from webhooks.models import MtnCallback

from .conftest import LIVE_SERVER_HOST, PAYOUTS_URL, Shop, make_due, wait_until

pytestmark = pytest.mark.e2e

UG_COLLECTION = ProductCredentials("ug-col-sub", "2b4d6f80-1a3c-4e5f-8a7b-9c0d1e2f3a4b", "ug-col")
UG_DISBURSEMENT = ProductCredentials("ug-dis-sub", "4d6f802b-3c1a-4e5f-9b7a-0c9d1e2f3a4b", "ug-dis")
SHOP_COLLECTION = ProductCredentials(
    "shop-col-sub", "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910", "shop-col"
)
SHOP_DISBURSEMENT = ProductCredentials(
    "shop-dis-sub", "9e8d7c6b-5a4f-4321-8fed-cba987654321", "shop-dis"
)
PAYER = "256772123456"


@dataclass
class Markets:
    default: SandboxHandle
    ug: SandboxHandle
    shop_ug: SandboxHandle

    def by_account(self) -> dict[str, SandboxHandle]:
        return {"default": self.default, "ug": self.ug, "shop-ug": self.shop_ug}


def _credentials(collection: ProductCredentials, disbursement: ProductCredentials) -> dict:
    return {
        product: {
            "subscription_key": creds.subscription_key,
            "api_user": creds.api_user,
            "api_key": creds.api_key,
        }
        for product, creds in (("collection", collection), ("disbursement", disbursement))
    }


@pytest.fixture
def markets(sim: SandboxHandle, shop: Shop) -> Iterator[Markets]:
    """``sim`` (the default account) plus the platform's and the shop's Uganda accounts."""
    config = SandboxConfig(
        delay_seconds=0.05, seed=3, callback_timeout=5.0, provider_callback_host=LIVE_SERVER_HOST
    )
    ug = start_sandbox(
        config,
        target_environment="mtnuganda",
        currency="UGX",
        collection=UG_COLLECTION,
        disbursement=UG_DISBURSEMENT,
    )
    shop_ug = start_sandbox(
        SandboxConfig(
            delay_seconds=0.05,
            seed=4,
            callback_timeout=5.0,
            provider_callback_host=LIVE_SERVER_HOST,
        ),
        target_environment="mtnuganda",
        currency="UGX",
        collection=SHOP_COLLECTION,
        disbursement=SHOP_DISBURSEMENT,
    )
    for name, handle, tenant, creds in (
        ("ug", ug, None, (UG_COLLECTION, UG_DISBURSEMENT)),
        ("shop-ug", shop_ug, shop.tenant.slug, (SHOP_COLLECTION, SHOP_DISBURSEMENT)),
    ):
        mtn_account_set(
            name=name,
            target_environment="mtnuganda",
            currencies=["UGX"],
            credentials=_credentials(*creds),
            base_url=handle.base_url,
            tenant_slug=tenant,
            actor=Actor.system(),
        )
    yield Markets(default=sim, ug=ug, shop_ug=shop_ug)
    shop_ug.stop()
    ug.stop()


@pytest.fixture
def bob_shop(db) -> Shop:
    """Another tenant, without an account of its own: its UGX goes through the platform's."""
    tenant, issued = tenant_create(slug="bob", name="Bob", actor=Actor.system())
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.raw_key, HTTP_X_TENANT_ID="bob")
    return Shop(tenant=tenant, client=client)


_keys = iter(range(1, 1_000_000))


def post(client: Any, url: str, body: dict) -> Any:
    """Create through the API; then the dispatcher submits what is due (a new object is)."""
    response = client.post(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"accounts-e2e-{next(_keys)}",
    )
    if response.status_code == 201:
        Worker(only=("payment", "payout", "refund")).run_once()
    return response


def pay(client: Any, currency: str, payer: str = PAYER) -> dict:
    amount = "1000" if currency == "UGX" else "12.50"
    response = post(
        client, "/api/v1/payments", {"amount": amount, "currency": currency, "payer": payer}
    )
    assert response.status_code == 201, response.content
    return response.json()


def calls(handle: SandboxHandle, method: str, fragment: str) -> list[dict]:
    """The product calls ``handle`` received whose path contains ``fragment``."""
    return [
        entry
        for entry in handle.state.request_log()
        if entry["method"] == method and fragment in entry["path"]
    ]


def received_only_by(markets: Markets, name: str, reference: str) -> bool:
    """Whether the simulator of account ``name``, and no other, holds ``reference``."""
    holders = {
        account
        for account, handle in markets.by_account().items()
        if any(t["reference_id"] == reference for t in handle.state.all_transactions())
    }
    return holders == {name}


def test_each_payment_reaches_the_mtn_of_its_account_with_that_accounts_headers(
    markets, shop, bob_shop
):
    own = pay(shop.client, "UGX")  # the shop's own Uganda account
    platform = pay(bob_shop.client, "UGX")  # Bob has none: the platform's Uganda market
    sandbox = pay(shop.client, "EUR")  # nobody claims EUR: default

    assert (own["account"], platform["account"], sandbox["account"]) == (
        "shop-ug",
        "ug",
        "default",
    )
    expected = {
        "shop-ug": (own, "mtnuganda", SHOP_COLLECTION.subscription_key),
        "ug": (platform, "mtnuganda", UG_COLLECTION.subscription_key),
        "default": (sandbox, "sandbox", django_settings.MTN_COLLECTION_SUBSCRIPTION_KEY),
    }
    for name, (answer, environment, key) in expected.items():
        payment = Payment.objects.get(pk=answer["id"])
        assert payment.mtn_account == name
        reference = str(payment.mtn_reference_id)
        assert received_only_by(markets, name, reference)
        handle = markets.by_account()[name]
        (sent,) = calls(handle, "POST", "/collection/v1_0/requesttopay")
        assert sent["headers"]["X-Reference-Id"] == reference
        assert sent["headers"]["X-Target-Environment"] == environment
        assert sent["headers"]["Ocp-Apim-Subscription-Key"] == key
        assert "X-Callback-Url" not in sent["headers"]  # no account has a callback URL here
    # The merchant's reads show the account too.
    shown = shop.client.get(f"/api/v1/payments/{own['id']}").json()
    assert shown["account"] == "shop-ug"


def test_an_accounts_callback_url_is_the_one_mtn_is_given(markets, bob_shop, live_server):
    mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={},
        callback_url=live_server.url,
        actor=Actor.system(),
    )
    payment = Payment.objects.get(pk=pay(bob_shop.client, "UGX")["id"])

    (sent,) = calls(markets.ug, "POST", "/collection/v1_0/requesttopay")
    assert sent["headers"]["X-Callback-Url"] == (
        f"{live_server.url}/api/v1/webhooks/mtn/{payment.callback_token}"
    )
    # MTN's callback is confirmed with the account that took the payment, and no other.
    assert wait_until(
        lambda: MtnCallback.objects.filter(object_id=payment.pk, processed_at__isnull=False)
        .exclude(outcome=MtnCallback.Outcome.DEFERRED)
        .exists(),
        timeout=10,
    )
    callback = MtnCallback.objects.get(object_id=payment.pk)
    assert callback.outcome == MtnCallback.Outcome.APPLIED
    assert callback.confirmed_status == "SUCCESSFUL"
    reference = str(payment.mtn_reference_id)
    (confirmation,) = calls(markets.ug, "GET", f"/collection/v1_0/requesttopay/{reference}")
    assert confirmation["headers"]["Ocp-Apim-Subscription-Key"] == UG_COLLECTION.subscription_key
    for other in (markets.default, markets.shop_ug):
        assert calls(other, "GET", "/requesttopay/") == []
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"


def test_polls_rechecks_and_refunds_go_through_the_payments_own_account(markets, shop, bob_shop):
    own = Payment.objects.get(pk=pay(shop.client, "UGX")["id"])
    reference = str(own.mtn_reference_id)
    make_due(own)

    Worker().drain()

    own.refresh_from_db()
    assert own.status == "SUCCESSFUL"
    polls = calls(markets.shop_ug, "GET", f"/collection/v1_0/requesttopay/{reference}")
    assert polls
    assert {p["headers"]["Ocp-Apim-Subscription-Key"] for p in polls} == {
        SHOP_COLLECTION.subscription_key
    }
    assert transfer_recheck(transfer=own, actor=Actor.system()).outcome == "unchanged"
    assert len(calls(markets.shop_ug, "GET", f"/requesttopay/{reference}")) == len(polls) + 1

    # The shop holds no UGX with the gateway: a refund through its own account is not
    # refused for funds, and goes to the MTN that took the payment, with its disbursement key.
    response = post(shop.client, f"/api/v1/payments/{own.pk}/refunds", {"amount": "400"})
    assert response.status_code == 201, response.content
    assert response.json()["account"] == "shop-ug"
    refund = Refund.objects.get(pk=response.json()["id"])
    (sent,) = calls(markets.shop_ug, "POST", "/disbursement/v1_0/refund")
    assert sent["headers"]["X-Reference-Id"] == str(refund.mtn_reference_id)
    assert sent["headers"]["X-Target-Environment"] == "mtnuganda"
    assert sent["headers"]["Ocp-Apim-Subscription-Key"] == SHOP_DISBURSEMENT.subscription_key
    assert markets.shop_ug.state.transaction(refund.mtn_reference_id)["reference_id_to_refund"] == (
        reference
    )
    make_due(refund)
    Worker().drain()
    refund.refresh_from_db()
    assert refund.status == "SUCCESSFUL"
    assert calls(markets.shop_ug, "GET", f"/disbursement/v1_0/refund/{refund.mtn_reference_id}")
    for other in (markets.default, markets.ug):
        assert calls(other, "POST", "/disbursement") == []
        assert calls(other, "GET", reference) == []
    # Nothing of it touched the shop's balances.
    assert not LedgerTransaction.objects.filter(tenant_id=shop.tenant.pk, currency="UGX").exists()
    assert ledger_verify() == []


def test_a_tenant_owned_payout_needs_no_balance_and_leaves_the_ledger_alone(
    markets, shop, bob_shop
):
    before = LedgerTransaction.objects.count()

    own = post(shop.client, PAYOUTS_URL, {"amount": "5000", "currency": "UGX", "payee": PAYER})
    refused = post(
        bob_shop.client, PAYOUTS_URL, {"amount": "5000", "currency": "UGX", "payee": PAYER}
    )

    assert own.status_code == 201, own.content
    assert own.json()["account"] == "shop-ug"
    payout = Payout.objects.get(pk=own.json()["id"])
    make_due(payout)
    Worker().drain()
    payout.refresh_from_db()
    assert payout.status == "SUCCESSFUL"
    (sent,) = calls(markets.shop_ug, "POST", "/disbursement/v1_0/transfer")
    assert sent["headers"]["Ocp-Apim-Subscription-Key"] == SHOP_DISBURSEMENT.subscription_key
    assert LedgerTransaction.objects.count() == before
    # Bob's UGX go through the platform's wallet: without a balance, refused, nothing sent.
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert not Payout.objects.filter(tenant=bob_shop.tenant).exists()
    assert calls(markets.ug, "POST", "/disbursement") == []


def test_an_object_keeps_its_account_when_routing_changes(markets, bob_shop):
    first = Payment.objects.get(pk=pay(bob_shop.client, "UGX")["id"])
    mtn_account_set(
        name="bob-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials=_credentials(SHOP_COLLECTION, SHOP_DISBURSEMENT),
        base_url=markets.shop_ug.base_url,
        tenant_slug="bob",
        actor=Actor.system(),
    )
    second = pay(bob_shop.client, "UGX")
    make_due(first)

    Worker().drain()

    assert second["account"] == "bob-ug"
    first.refresh_from_db()
    assert first.mtn_account == "ug"
    assert first.status == "SUCCESSFUL"
    assert calls(markets.ug, "GET", str(first.mtn_reference_id))
    assert not calls(markets.shop_ug, "GET", str(first.mtn_reference_id))
    assert uuid.UUID(second["id"])
