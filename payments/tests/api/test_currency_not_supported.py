"""422 ``currency_not_supported``: no MTN account carries the currency (``MTN_CURRENCIES``
limits ``default``); nothing is stored, MTN is not called, the message names what is carried."""

from __future__ import annotations

import pytest

from gateway.audit import Actor
from gateway.models import IdempotencyKey
from ledger.selectors import balance_get
from mtn.accounts import mtn_account_set
from payments.models import Payment, Payout
from payments.tests.helpers import (
    PAYMENTS_URL,
    PAYOUTS_URL,
    assert_error,
    payment_body,
    payout_body,
    post_json,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox_only(settings):
    """The default account is MTN's sandbox: it carries EUR only."""
    settings.MTN_CURRENCIES = ("EUR",)


def _uganda_account(tenant_slug: str | None = None) -> None:
    mtn_account_set(
        name="uganda" if tenant_slug is None else f"{tenant_slug}-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": "ug-sub",
                "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
                "api_key": "ug-key",
            }
        },
        base_url="https://mtn.test",
        tenant_slug=tenant_slug,
        actor=Actor.system(),
    )


def test_a_payment_in_a_currency_no_account_carries_is_422_and_stores_nothing(
    alice, mtn, sandbox_only
):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(currency="UGX"), key="ugx-1")

    error = assert_error(response, 422, "currency_not_supported")
    assert "UGX" in error["message"]
    assert "EUR" in error["message"]
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not mtn.calls


def test_the_same_key_goes_through_once_the_currency_is_carried(alice, mtn, sandbox_only):
    body = payment_body(currency="UGX")
    assert post_json(alice.client, PAYMENTS_URL, body, key="ugx-2").status_code == 422

    _uganda_account()
    response = post_json(alice.client, PAYMENTS_URL, body, key="ugx-2")

    assert response.status_code == 201, response.content
    assert response.json()["account"] == "uganda"


def test_the_message_names_every_currency_carried_for_the_tenant(alice, mtn, sandbox_only):
    _uganda_account()

    response = post_json(alice.client, PAYMENTS_URL, payment_body(currency="GHS"))

    message = assert_error(response, 422, "currency_not_supported")["message"]
    assert "EUR, UGX" in message


def test_a_payout_is_refused_the_same_and_reserves_nothing(alice, mtn, sandbox_only, funded):
    before = balance_get(tenant_id=alice.tenant.pk, currency="UGX")

    response = post_json(alice.client, PAYOUTS_URL, payout_body(currency="UGX"), key="p-ugx")

    assert_error(response, 422, "currency_not_supported")
    assert not Payout.objects.exists()
    assert balance_get(tenant_id=alice.tenant.pk, currency="UGX") == before
    assert not mtn.calls


def test_a_tenants_own_account_carries_its_currency_for_it_alone(alice, bob, mtn, sandbox_only):
    _uganda_account("alice")

    assert post_json(alice.client, PAYMENTS_URL, payment_body(currency="UGX")).status_code == 201
    assert_error(
        post_json(bob.client, PAYMENTS_URL, payment_body(currency="UGX")),
        422,
        "currency_not_supported",
    )


def test_without_mtn_currencies_default_carries_any_currency(alice, mtn, settings):
    settings.MTN_CURRENCIES = ()

    assert post_json(alice.client, PAYMENTS_URL, payment_body(currency="UGX")).status_code == 201


def test_a_payer_look_up_in_a_currency_no_account_carries_is_422(alice, mtn, sandbox_only):
    response = alice.client.get("/api/v1/payers/256772123456?currency=UGX")

    assert "EUR" in assert_error(response, 422, "currency_not_supported")["message"]
    assert not mtn.calls


# --- messages that say how to fix it (issue 17, point 15) -------------------------------------


def test_insufficient_funds_gives_the_available_amount(alice, mtn):
    from conftest import fund_tenant

    fund_tenant(alice.tenant, "UGX", "700")

    response = post_json(alice.client, PAYOUTS_URL, payout_body(amount="1000", currency="UGX"))

    message = assert_error(response, 422, "insufficient_funds")["message"]
    assert "available UGX balance is 700" in message
    assert "1000" in message
    assert not Payout.objects.exists()


def test_a_reused_key_is_told_to_use_a_new_key(alice, mtn):
    assert post_json(alice.client, PAYMENTS_URL, payment_body(), key="k").status_code == 201

    response = post_json(alice.client, PAYMENTS_URL, payment_body(amount=2000), key="k")

    assert "new Idempotency-Key" in assert_error(response, 422, "idempotency_key_reused")["message"]
    assert Payment.objects.count() == 1
