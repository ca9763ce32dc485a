"""MTN accounts as data: setting them, routing money through them, their clients."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from gateway.audit import Actor
from gateway.models import AuditEvent
from mtn.accounts import (
    MtnAccountError,
    account_is_tenant_owned,
    mtn_account_get,
    mtn_account_route,
    mtn_account_set,
    mtn_client_for,
    mtn_route,
)
from mtn.models import MtnAccount, MtnAccountCurrency

COLLECTION = {
    "subscription_key": "ug-col-sub",
    "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
    "api_key": "ug-col-key",
}
DISBURSEMENT = {
    "subscription_key": "ug-dis-sub",
    "api_user": "7c2d4e6f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
    "api_key": "ug-dis-key",
}


def _set(name: str = "ug", **overrides):
    values = {
        "name": name,
        "target_environment": "mtnuganda",
        "currencies": ["UGX"],
        "credentials": {"collection": COLLECTION, "disbursement": DISBURSEMENT},
        "base_url": "https://proxy.momoapi.mtn.com",
        "actor": Actor.system(),
    }
    values.update(overrides)
    return mtn_account_set(**values)


def _run_set(*args: str, stdin: str) -> dict:
    out = io.StringIO()
    call_command("mtn_account_set", *args, stdin=io.StringIO(stdin), stdout=out)
    return json.loads(out.getvalue())


# --- routing -------------------------------------------------------------------------------


def test_without_accounts_everything_goes_through_default(tenant, settings):
    account = mtn_account_route(tenant_id=tenant.pk, currency="UGX")
    assert account.name == "default"
    assert not account_is_tenant_owned(account)
    assert mtn_client_for(account).config.base_url == settings.MTN_BASE_URL


def test_platform_account_carries_its_currency_and_default_the_rest(tenant):
    _set()
    assert mtn_account_route(tenant_id=tenant.pk, currency="UGX").name == "ug"
    assert mtn_account_route(tenant_id=tenant.pk, currency="GHS").name == "default"


def test_a_tenants_own_account_comes_first_and_only_for_that_tenant(tenant, other_tenant):
    _set()
    _set("alice-ug", tenant_slug=tenant.slug)
    own = mtn_account_route(tenant_id=tenant.pk, currency="UGX")
    assert own.name == "alice-ug"
    assert account_is_tenant_owned(own)
    assert mtn_account_route(tenant_id=other_tenant.pk, currency="UGX").name == "ug"


def test_routing_is_one_query(tenant, django_assert_num_queries):
    _set()
    with django_assert_num_queries(1):
        mtn_account_route(tenant_id=tenant.pk, currency="UGX")


def test_routed_client_speaks_with_the_accounts_credentials(tenant):
    _set("alice-ug", tenant_slug=tenant.slug, callback_url="https://pay.alice.example")
    routed = mtn_route(tenant_id=tenant.pk, currency="UGX")
    config = routed.client.config
    assert routed.name == "alice-ug"
    assert routed.is_tenant_owned
    assert routed.callback_base_url == "https://pay.alice.example"
    assert config.target_environment == "mtnuganda"
    assert config.collection.api_user == COLLECTION["api_user"]
    assert config.disbursement.api_key == DISBURSEMENT["api_key"]


def test_clients_are_kept_per_thread_and_account(tenant):
    _set()
    account = mtn_account_get(name="ug")
    assert mtn_client_for(account) is mtn_client_for(mtn_account_get(name="ug"))
    assert mtn_client_for(account) is not mtn_client_for(mtn_account_get(name="default"))
    assert mtn_client_for(account, quick=True).config.read_timeout == 1.5


# --- setting accounts ----------------------------------------------------------------------


def test_credentials_are_stored_encrypted(db):
    _set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mtn_mtnaccount")
        row = " ".join(str(value) for value in cursor.fetchone())
    for secret in (*COLLECTION.values(), *DISBURSEMENT.values()):
        assert secret not in row


def test_setting_again_replaces_given_products_and_keeps_the_others(db):
    _set()
    new_collection = {**COLLECTION, "api_key": "rotated-key"}
    _set(credentials={"collection": new_collection}, currencies=["UGX"])
    account = MtnAccount.objects.get(name="ug")
    assert account.collection_api_key == "rotated-key"
    assert account.disbursement_api_key == DISBURSEMENT["api_key"]
    assert MtnAccount.objects.count() == 1


def test_an_owner_has_one_account_per_currency(db):
    _set()
    with pytest.raises(
        MtnAccountError, match="UGX is already carried by account ug of the platform"
    ):
        _set("ug2")
    assert list(MtnAccount.objects.values_list("name", flat=True)) == ["ug"]


def test_the_database_itself_refuses_two_accounts_of_one_owner_for_a_currency(tenant):
    first = _set("alice-ug", tenant_slug=tenant.slug)
    second = _set(
        "alice-eur", tenant_slug=tenant.slug, target_environment="sandbox", currencies=["EUR"]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        MtnAccountCurrency.objects.create(account=second, tenant=tenant, currency="UGX")
    with pytest.raises(IntegrityError), transaction.atomic():
        MtnAccountCurrency.objects.create(account=_set(), tenant=None, currency="UGX")
    assert first.currency_list() == ["UGX"]


def test_an_accounts_owner_never_changes(tenant, other_tenant):
    _set("alice-ug", tenant_slug=tenant.slug)
    with pytest.raises(MtnAccountError, match="owner never changes"):
        _set("alice-ug", tenant_slug=other_tenant.slug)
    assert MtnAccount.objects.get(name="alice-ug").tenant_id == tenant.pk


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "default"}, "MTN_\\* settings"),
        ({"name": "Bad Name"}, "Account name"),
        ({"currencies": ["GHS"]}, "carries only UGX"),
        ({"currencies": ["ugx"]}, "Currency"),
        ({"currencies": []}, "at least one currency"),
        ({"target_environment": "MTN Uganda"}, "Target environment"),
        ({"base_url": "http://mtn.example.com"}, "https"),
        ({"callback_url": "not a url"}, "callback URL"),
        ({"tenant_slug": "nobody"}, "no tenant"),
        ({"credentials": {}}, "at least one product"),
        ({"credentials": {"remittance": COLLECTION}}, "Unknown product"),
        ({"credentials": {"collection": {**COLLECTION, "api_user": "x"}}}, "UUID"),
        ({"credentials": {"collection": {"api_user": COLLECTION["api_user"]}}}, "missing"),
        ({"credentials": {"collection": {**COLLECTION, "api_key": ""}}}, "non-empty"),
        ({"credentials": ["not", "an", "object"]}, "one JSON object"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(db, overrides, message):
    with pytest.raises(MtnAccountError, match=message):
        _set(**overrides)
    assert not MtnAccount.objects.exists()
    assert not MtnAccountCurrency.objects.exists()
    assert not AuditEvent.objects.filter(object_type="mtn_account").exists()


def test_refusals_never_quote_a_credential(db):
    bad = {**COLLECTION, "api_user": "secret-looking-user"}
    with pytest.raises(MtnAccountError) as caught:
        _set(credentials={"collection": bad})
    assert "secret-looking-user" not in str(caught.value)


def test_set_is_audited_without_credentials(tenant):
    _set("alice-ug", tenant_slug=tenant.slug)
    event = AuditEvent.objects.get(action="mtn_account.created")
    assert event.tenant_id == tenant.pk
    text = json.dumps(event.data)
    assert "ug-col-key" not in text
    assert event.data["credentials_set"] == ["collection", "disbursement"]


def test_mtn_account_set_command_reads_credentials_from_stdin(tenant):
    printed = _run_set(
        "alice-ug",
        "--target-environment",
        "mtnuganda",
        "--currency",
        "UGX",
        "--tenant",
        tenant.slug,
        stdin=json.dumps({"collection": COLLECTION}),
    )
    assert printed == {
        "account": "alice-ug",
        "tenant": tenant.slug,
        "target_environment": "mtnuganda",
        "currencies": ["UGX"],
    }
    account = MtnAccount.objects.get(name="alice-ug")
    assert account.base_url == "https://proxy.momoapi.mtn.com"
    assert account.has_product("collection")
    assert not account.has_product("disbursement")


def test_mtn_account_set_command_platform_account_prints_null_tenant(db):
    printed = _run_set(
        "sbx",
        "--target-environment",
        "sandbox",
        "--currency",
        "EUR",
        stdin=json.dumps({"collection": COLLECTION}),
    )
    assert printed["tenant"] is None
    assert MtnAccount.objects.get(name="sbx").base_url == "https://sandbox.momodeveloper.mtn.com"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "standard input"),
        ("{not json", "not JSON"),
        pytest.param("[" * 100_000, "nests too deeply", id="deeply-nested"),
        ('{"collection": {"subscription_key": "k"}}', "missing"),
    ],
)
def test_mtn_account_set_command_bad_stdin_exits_non_zero_and_stores_nothing(db, stdin, message):
    with pytest.raises(CommandError, match=message):
        _run_set("ug", "--target-environment", "mtnuganda", "--currency", "UGX", stdin=stdin)
    assert not MtnAccount.objects.exists()


def test_updating_an_account_without_tenant_keeps_its_owner(tenant):
    _set("alice-ug", tenant_slug=tenant.slug)
    printed = _run_set(
        "alice-ug",
        "--target-environment",
        "mtnuganda",
        "--currency",
        "UGX",
        stdin="{}",
    )
    assert printed["tenant"] == tenant.slug
