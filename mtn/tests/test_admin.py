"""MTN accounts in the admin: listed, credentials write-only, checked with MTN."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from gateway.audit import Actor
from gateway.models import AuditEvent
from mtn.accounts import mtn_account_set
from mtn.models import MtnAccount
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox
from payments.tests.admin.factories import fast_password_hashing  # noqa: F401 - autouse

CHANGELIST = reverse("admin:mtn_mtnaccount_changelist")
ADD = reverse("admin:mtn_mtnaccount_add")
SECRETS = {
    "collection_subscription_key": "col-sub-9d2f7e1a",
    "collection_api_user": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
    "collection_api_key": "col-key-4b7c1e9d",
}


@pytest.fixture
def uganda() -> Iterator[SandboxHandle]:
    handle = start_sandbox(SandboxConfig(target_environment="mtnuganda", delay_seconds=0.3))
    yield handle
    handle.stop()


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def add_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "ug",
        "tenant": "",
        "target_environment": "mtnuganda",
        "currencies": "UGX",
        "base_url": "https://proxy.momoapi.mtn.com",
        "callback_url": "",
        **SECRETS,
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value != ""}


def simulator_account(settings, base_url: str, tenant_slug: str | None = None, **changes):
    credentials = {
        product: {
            "subscription_key": getattr(settings, f"MTN_{product.upper()}_SUBSCRIPTION_KEY"),
            "api_user": getattr(settings, f"MTN_{product.upper()}_API_USER"),
            "api_key": getattr(settings, f"MTN_{product.upper()}_API_KEY"),
        }
        for product in ("collection", "disbursement")
    }
    for dotted, value in changes.items():
        product, part = dotted.split("__")
        credentials[product][part] = value
    return mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials=credentials,
        base_url=base_url,
        tenant_slug=tenant_slug,
        actor=Actor.system(),
    )


def test_accounts_are_listed_with_owner_and_currencies_and_no_credential(
    admin_client, tenant, settings
):
    account = simulator_account(settings, "https://proxy.momoapi.mtn.com", tenant_slug="alice")
    response = admin_client.get(CHANGELIST)
    content = response.content.decode()
    assert response.status_code == 200
    assert "ug" in content
    assert "alice" in content
    assert "UGX" in content
    assert "collection: set; disbursement: set" in content
    assert settings.MTN_COLLECTION_API_KEY not in content
    assert settings.MTN_COLLECTION_API_USER not in content
    stored = MtnAccount.objects.get(pk=account.pk).__dict__["collection_api_key"].token
    assert stored not in content


def test_the_change_page_never_shows_a_credential_not_even_its_ciphertext(
    admin_client, db, settings
):
    account = simulator_account(settings, "https://proxy.momoapi.mtn.com")
    row = MtnAccount.objects.get(pk=account.pk)
    response = admin_client.get(reverse("admin:mtn_mtnaccount_change", args=[account.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'type="password"' in content
    for product in ("collection", "disbursement"):
        for part in ("subscription_key", "api_user", "api_key"):
            assert getattr(settings, f"MTN_{product.upper()}_{part.upper()}") not in content
            assert row.__dict__[f"{product}_{part}"].token not in content
    assert "Check with MTN" in content


def test_adding_an_account_stores_it_through_the_service(admin_client, db):
    response = admin_client.post(ADD, add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    account = MtnAccount.objects.get(name="ug")
    assert account.currency_list() == ["UGX"]
    assert account.collection_api_key == SECRETS["collection_api_key"]
    assert not account.has_product("disbursement")
    event = AuditEvent.objects.get(action="mtn_account.created")
    assert event.actor_id == "admin"


def test_a_bad_account_is_refused_in_the_form_and_nothing_is_stored(admin_client, db):
    response = admin_client.post(ADD, add_form(currencies="GHS"))
    assert response.status_code == 200
    assert "carries only UGX" in response.content.decode()
    response = admin_client.post(ADD, add_form(collection_api_key=""))
    assert response.status_code == 200
    assert "missing api_key" in response.content.decode()
    assert not MtnAccount.objects.exists()
    # A refused form never sends a credential back.
    assert SECRETS["collection_api_key"] not in response.content.decode()


def test_changing_an_account_with_empty_credentials_keeps_them(admin_client, db, settings):
    account = simulator_account(settings, "https://proxy.momoapi.mtn.com")
    response = admin_client.post(
        reverse("admin:mtn_mtnaccount_change", args=[account.pk]),
        {
            "target_environment": "mtnuganda",
            "currencies": "UGX",
            "base_url": "https://proxy.momoapi.mtn.com",
            "callback_url": "https://pay.example.com",
            "disbursement_subscription_key": "new-dis-sub",
            "disbursement_api_user": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "disbursement_api_key": "new-dis-key",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert fresh.callback_url == "https://pay.example.com"
    assert fresh.collection_api_key == settings.MTN_COLLECTION_API_KEY
    assert fresh.disbursement_api_key == "new-dis-key"


def test_check_with_mtn_reports_the_balance(admin_client, db, settings, uganda):
    account = simulator_account(settings, uganda.base_url)
    response = admin_client.post(
        CHANGELIST,
        {"action": "check_with_mtn", "_selected_action": [account.pk]},
        follow=True,
    )
    text = " ".join(messages_of(response))
    assert "collection: OK, balance 1000000 UGX" in text
    assert "disbursement: OK" in text


def test_check_with_mtn_names_the_refused_credential(admin_client, db, settings, uganda):
    account = simulator_account(settings, uganda.base_url, collection__api_key="wrong-key")
    url = reverse("admin:mtn_mtnaccount_object_action", args=[account.pk, "check_with_mtn"])
    response = admin_client.post(url, follow=True)
    text = " ".join(messages_of(response))
    assert "collection API user or API key" in text
    assert "wrong-key" not in text


def test_accounts_cannot_be_deleted(admin_client, db, settings):
    account = simulator_account(settings, "https://proxy.momoapi.mtn.com")
    response = admin_client.post(reverse("admin:mtn_mtnaccount_delete", args=[account.pk]))
    assert response.status_code == 403
    assert MtnAccount.objects.filter(pk=account.pk).exists()
