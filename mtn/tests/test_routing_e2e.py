"""Routing against three simulators at once: the platform's default (sandbox, EUR), the
platform's Uganda market and a tenant's own Uganda account, each with its own credentials.
Each payment reaches exactly the MTN its account names, and later calls go the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gateway.audit import Actor
from mtn.accounts import mtn_account_set, mtn_client_named, mtn_route
from mtn.sandbox import ProductCredentials, SandboxConfig, SandboxHandle, start_sandbox

pytestmark = pytest.mark.e2e

UG = ProductCredentials("ug-col-sub", "2b4d6f80-1a3c-4e5f-8a7b-9c0d1e2f3a4b", "ug-col-key")
ALICE = ProductCredentials("alice-col-sub", "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910", "alice-key")


@pytest.fixture
def markets(settings) -> Iterator[dict[str, SandboxHandle]]:
    handles = {
        "default": start_sandbox(SandboxConfig(delay_seconds=0.2)),
        "ug": start_sandbox(
            SandboxConfig(delay_seconds=0.2), target_environment="mtnuganda", collection=UG
        ),
        "alice-ug": start_sandbox(
            SandboxConfig(delay_seconds=0.2), target_environment="mtnuganda", collection=ALICE
        ),
    }
    settings.MTN_BASE_URL = handles["default"].base_url
    settings.MTN_SUBMIT_MAX_TRIES = 1
    yield handles
    for handle in handles.values():
        handle.stop()


def _account(name: str, creds: ProductCredentials, base_url: str, tenant: str | None) -> None:
    mtn_account_set(
        name=name,
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": creds.subscription_key,
                "api_user": creds.api_user,
                "api_key": creds.api_key,
            }
        },
        base_url=base_url,
        tenant_slug=tenant,
        actor=Actor.system(),
    )


def _pay(tenant, currency: str) -> tuple[str, uuid.UUID]:
    routed = mtn_route(tenant_id=tenant.pk, currency=currency)
    reference = uuid.uuid4()
    routed.client.request_to_pay(
        reference_id=reference,
        amount="1000" if currency == "UGX" else "10.00",
        currency=currency,
        external_id=str(uuid.uuid4()),
        payer_msisdn="256772123456",
    )
    return routed.name, reference


def test_each_payment_reaches_the_mtn_of_its_account_and_later_calls_follow(markets, alice, bob):
    _account("ug", UG, markets["ug"].base_url, None)
    _account("alice-ug", ALICE, markets["alice-ug"].base_url, "alice")

    sent = {
        "alice UGX": _pay(alice.tenant, "UGX"),
        "bob UGX": _pay(bob.tenant, "UGX"),
        "alice EUR": _pay(alice.tenant, "EUR"),
    }

    assert {who: name for who, (name, _) in sent.items()} == {
        "alice UGX": "alice-ug",
        "bob UGX": "ug",
        "alice EUR": "default",
    }
    for name, reference in sent.values():
        transactions = markets[name].state.transactions
        assert str(reference) in transactions  # reached its own MTN...
        for other, handle in markets.items():
            if other != name:
                assert str(reference) not in handle.state.transactions  # ...and no other
    assert markets["alice-ug"].state.transactions[str(sent["alice UGX"][1])].api_user == (
        ALICE.api_user
    )
    assert markets["ug"].state.transactions[str(sent["bob UGX"][1])].api_user == UG.api_user

    # A status poll goes through the account recorded on the object, by its name.
    for name, reference in sent.values():
        status = mtn_client_named(name).request_to_pay_status(reference_id=reference)
        assert status.status in ("PENDING", "SUCCESSFUL")
