"""Trust boundaries of MTN accounts (issue 19 findings 1 and 5, issue 17 point 13).

Credentials never follow an account to a new host; "Check with MTN" needs an operator's
permission; every MTN account page a Support member can reach opens; an unknown target
environment is refused unless forced.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from gateway.audit import Actor
from gateway.models import AuditEvent
from gateway.staff_groups import MONEY_OPERATORS, SUPPORT
from mtn.accounts import MARKET_CURRENCIES, MtnAccountError, mtn_account_set
from mtn.models import MtnAccount
from payments.tests.admin.factories import fast_password_hashing  # noqa: F401 - autouse

pytestmark = pytest.mark.django_db

MTN_HOST = "https://proxy.momoapi.mtn.com"
ATTACKER_HOST = "https://collector.attacker.example"
CHANGELIST = reverse("admin:mtn_mtnaccount_changelist")
COLLECTION = {
    "subscription_key": "stored-col-sub-5f1c",
    "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
    "api_key": "stored-col-key-93ad",
}
DISBURSEMENT = {
    "subscription_key": "stored-dis-sub-2b7e",
    "api_user": "7c2d4e6f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
    "api_key": "stored-dis-key-61c0",
}
NEW_COLLECTION = {**COLLECTION, "api_key": "new-col-key-0e4d"}
NEW_DISBURSEMENT = {**DISBURSEMENT, "api_key": "new-dis-key-7a1b"}
STORED_SECRETS = [value for creds in (COLLECTION, DISBURSEMENT) for value in creds.values()]


@pytest.fixture
def account() -> MtnAccount:
    return mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={"collection": COLLECTION, "disbursement": DISBURSEMENT},
        base_url=MTN_HOST,
        actor=Actor.system(),
    )


def run_set(*args: str, stdin: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("mtn_account_set", *args, stdin=io.StringIO(stdin), stdout=out)
    return json.loads(out.getvalue())


def assert_unchanged(account: MtnAccount) -> None:
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert fresh.base_url == MTN_HOST
    assert fresh.collection_api_key == COLLECTION["api_key"]
    assert fresh.disbursement_api_key == DISBURSEMENT["api_key"]
    assert not AuditEvent.objects.filter(action="mtn_account.updated").exists()


@pytest.fixture
def any_host() -> Iterator[responses.RequestsMock]:
    """Every HTTP host answers like MTN (a token, a balance); the calls are recorded."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(
            responses.POST,
            re.compile(r"https://[^/]+/(collection|disbursement)/token/"),
            json={"access_token": "tok", "token_type": "access_token", "expires_in": 3600},
        )
        mock.add(
            responses.GET,
            re.compile(r"https://[^/]+/(collection|disbursement)/v1_0/account/balance"),
            json={"availableBalance": "1000", "currency": "UGX"},
        )
        yield mock


def member_of(django_user_model: Any, group_name: str) -> Client:
    user = django_user_model.objects.create_user(
        username=group_name.lower().replace(" ", "-"), password="not-used", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group_name))
    client = Client()
    client.force_login(user)
    return client


# --- 1. credentials never follow an account to a new host --------------------------------


def test_the_command_refuses_a_new_base_url_without_the_credentials(account):
    with pytest.raises(CommandError, match="give the collection and disbursement credentials"):
        run_set(
            "ug",
            "--target-environment=mtnuganda",
            "--currency=UGX",
            f"--base-url={ATTACKER_HOST}",
            stdin="{}",
        )
    assert_unchanged(account)


def test_the_command_refuses_a_new_base_url_with_only_some_of_the_credentials(account):
    with pytest.raises(CommandError, match="give the disbursement credentials again"):
        run_set(
            "ug",
            "--target-environment=mtnuganda",
            "--currency=UGX",
            f"--base-url={ATTACKER_HOST}",
            stdin=json.dumps({"collection": NEW_COLLECTION}),
        )
    assert_unchanged(account)


def test_a_new_base_url_with_every_credential_is_stored(account):
    run_set(
        "ug",
        "--target-environment=mtnuganda",
        "--currency=UGX",
        "--base-url=https://momoapi.momo.africa",
        stdin=json.dumps({"collection": NEW_COLLECTION, "disbursement": NEW_DISBURSEMENT}),
    )
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert fresh.base_url == "https://momoapi.momo.africa"
    assert fresh.collection_api_key == NEW_COLLECTION["api_key"]
    assert fresh.disbursement_api_key == NEW_DISBURSEMENT["api_key"]


def test_the_same_base_url_or_none_keeps_the_credentials(account):
    for base_url in ([f"--base-url={MTN_HOST}/"], []):
        run_set("ug", "--target-environment=mtnuganda", "--currency=UGX", *base_url, stdin="{}")
    fresh = MtnAccount.objects.get(pk=account.pk)
    assert fresh.base_url == MTN_HOST
    assert fresh.collection_api_key == COLLECTION["api_key"]


def change_form(**overrides: str) -> dict[str, str]:
    data = {
        "target_environment": "mtnuganda",
        "currencies": "UGX",
        "base_url": ATTACKER_HOST,
        "callback_url": "",
        **overrides,
    }
    return {name: value for name, value in data.items() if value != ""}


def test_the_admin_form_refuses_a_new_base_url_without_the_credentials_and_check_stays_home(
    admin_client, account, any_host
):
    url = reverse("admin:mtn_mtnaccount_change", args=[account.pk])
    response = admin_client.post(url, change_form())
    content = response.content.decode()
    assert response.status_code == 200  # the form again, with the reason
    assert "give the collection and disbursement credentials again" in content
    assert_unchanged(account)

    # "Check with MTN" still speaks to MTN's host only: nothing reaches the other one.
    check = reverse("admin:mtn_mtnaccount_object_action", args=[account.pk, "check_with_mtn"])
    assert admin_client.post(check).status_code == 302
    hosts = {re.match(r"https://[^/]+", call.request.url).group(0) for call in any_host.calls}
    assert hosts == {MTN_HOST}
    sent = " ".join(str(call.request.headers) for call in any_host.calls)
    assert COLLECTION["subscription_key"] in sent  # (to MTN, as it should)


def test_the_admin_form_moves_an_account_with_its_new_credentials_and_check_uses_them(
    admin_client, account, any_host
):
    fields = {
        f"{product}_{part}": value
        for product, creds in (("collection", NEW_COLLECTION), ("disbursement", NEW_DISBURSEMENT))
        for part, value in creds.items()
    }
    url = reverse("admin:mtn_mtnaccount_change", args=[account.pk])
    response = admin_client.post(url, change_form(**fields))
    assert response.status_code == 302, response.content.decode()[:2000]

    check = reverse("admin:mtn_mtnaccount_object_action", args=[account.pk, "check_with_mtn"])
    admin_client.post(check)
    assert {call.request.url.split("/")[2] for call in any_host.calls} == {
        "collector.attacker.example"
    }
    sent = " ".join(f"{call.request.headers} {call.request.body or ''}" for call in any_host.calls)
    for secret in STORED_SECRETS:
        if secret not in NEW_COLLECTION.values() and secret not in NEW_DISBURSEMENT.values():
            assert secret not in sent
    assert NEW_COLLECTION["subscription_key"] in sent


def test_the_service_refuses_it_too(account):
    with pytest.raises(MtnAccountError, match="never sent to another"):
        mtn_account_set(
            name="ug",
            target_environment="mtnuganda",
            currencies=["UGX"],
            credentials={},
            base_url=ATTACKER_HOST,
            actor=Actor.system(),
        )
    assert_unchanged(account)


def test_a_move_made_meanwhile_is_seen_under_the_lock(account, monkeypatch):
    """Validated against the old row (same URL, no credentials needed), but another change
    moved the account meanwhile: writing the old URL back would send the new host's
    credentials to it, so the locked row is checked again and nothing is stored."""
    import mtn.accounts as accounts

    stale = accounts.mtn_account_validate(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={},
        base_url=MTN_HOST,
    )
    mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={"collection": NEW_COLLECTION, "disbursement": NEW_DISBURSEMENT},
        base_url="https://momoapi.momo.africa",
        actor=Actor.system(),
    )
    monkeypatch.setattr(accounts, "mtn_account_validate", lambda **values: stale)

    with pytest.raises(MtnAccountError, match="never sent to another"):
        mtn_account_set(actor=Actor.system(), name="ug")

    fresh = MtnAccount.objects.get(pk=account.pk)
    assert fresh.base_url == "https://momoapi.momo.africa"
    assert fresh.collection_api_key == NEW_COLLECTION["api_key"]
    assert AuditEvent.objects.filter(action="mtn_account.updated").count() == 1


# --- issue 17 point 13: MTN's target environments -----------------------------------------


def test_an_unknown_target_environment_is_refused_listing_mtns(db):
    with pytest.raises(CommandError) as refused:
        run_set(
            "ug",
            "--target-environment=uganda",
            "--currency=UGX",
            stdin=json.dumps({"collection": COLLECTION}),
        )
    message = str(refused.value)
    assert "'uganda' is not one of MTN's" in message
    for words in ("mtnuganda", "sandbox", "mtnghana", "--force"):
        assert words in message
    assert "Nothing was stored" in message
    assert not MtnAccount.objects.exists()


def test_force_stores_an_unknown_target_environment(db):
    printed = run_set(
        "mz",
        "--target-environment=mtnmozambique",
        "--currency=MZN",
        "--force",
        stdin=json.dumps({"collection": COLLECTION}),
    )
    assert printed["target_environment"] == "mtnmozambique"
    assert MtnAccount.objects.get(name="mz").target_environment == "mtnmozambique"
    assert "mtnmozambique" not in MARKET_CURRENCIES


def test_the_admin_refuses_an_unknown_market_but_edits_a_forced_one(admin_client, db):
    fields = {f"collection_{part}": value for part, value in COLLECTION.items()}
    add = reverse("admin:mtn_mtnaccount_add")
    response = admin_client.post(
        add, {"name": "ug", "target_environment": "uganda", "currencies": "UGX", **fields}
    )
    assert response.status_code == 200
    assert "is not one of MTN&#x27;s" in response.content.decode()
    assert not MtnAccount.objects.exists()

    run_set(
        "mz",
        "--target-environment=mtnmozambique",
        "--currency=MZN",
        "--force",
        stdin=json.dumps({"collection": COLLECTION}),
    )
    forced = MtnAccount.objects.get(name="mz")
    response = admin_client.post(
        reverse("admin:mtn_mtnaccount_change", args=[forced.pk]),
        {
            "target_environment": "mtnmozambique",
            "currencies": "MZN",
            "base_url": forced.base_url,
            "callback_url": "https://pay.example.com",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MtnAccount.objects.get(pk=forced.pk).callback_url == "https://pay.example.com"


def test_help_texts_say_what_each_option_takes():
    from mtn.management.commands.mtn_account_set import Command as SetCommand
    from webhooks.management.commands.webhook_listen import Command as ListenCommand

    text = SetCommand().create_parser("manage.py", "mtn_account_set").format_help()
    flat = " ".join(text.split())
    for words in ("mtnuganda", "repeat for more", "MTN's host for the target", "--force"):
        assert words in flat
    assert "providerCallbackHost" in flat
    listen = " ".join(
        ListenCommand().create_parser("manage.py", "webhook_listen").format_help().split()
    )
    assert "default 8003" in listen
    assert "default 127.0.0.1" in listen


# --- 5. Check with MTN needs an operator; Support's pages open ----------------------------


def test_support_opens_every_mtn_account_page_and_cannot_make_the_gateway_call_mtn(
    django_user_model, account, any_host
):
    client = member_of(django_user_model, SUPPORT)

    listing = client.get(CHANGELIST)
    page = client.get(reverse("admin:mtn_mtnaccount_change", args=[account.pk]))
    history = client.get(reverse("admin:mtn_mtnaccount_history", args=[account.pk]))
    for response in (listing, page, history):
        assert response.status_code == 200
    content = page.content.decode()
    assert "collection: set; disbursement: set" in content
    assert "Check with MTN" not in content + listing.content.decode()
    for secret in STORED_SECRETS:
        assert secret not in content

    action = client.post(CHANGELIST, {"action": "check_with_mtn", "_selected_action": [account.pk]})
    button = client.post(
        reverse("admin:mtn_mtnaccount_object_action", args=[account.pk, "check_with_mtn"])
    )
    assert action.status_code in (200, 302)  # "no action selected": the list again
    assert button.status_code == 403
    assert len(any_host.calls) == 0  # MTN was never called


def test_money_operators_may_check_with_mtn(django_user_model, account, any_host):
    client = member_of(django_user_model, MONEY_OPERATORS)
    page = client.get(reverse("admin:mtn_mtnaccount_change", args=[account.pk]))
    assert page.status_code == 200
    assert "Check with MTN" in page.content.decode()
    url = reverse("admin:mtn_mtnaccount_object_action", args=[account.pk, "check_with_mtn"])
    assert client.post(url).status_code == 302
    assert len(any_host.calls) == 4  # a token and a balance per product
    # And they still cannot edit the account.
    edit = client.post(
        reverse("admin:mtn_mtnaccount_change", args=[account.pk]), change_form(base_url=MTN_HOST)
    )
    assert edit.status_code == 403
