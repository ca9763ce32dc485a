"""mtn_account_check, mtn_sandbox_provision and rotate_encryption_key against the simulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from gateway.audit import Actor
from gateway.crypto import SecretDecryptionError
from gateway.models import AuditEvent
from mtn.accounts import mtn_account_get, mtn_account_set
from mtn.models import MtnAccount
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox
from tenants.models import Tenant

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def uganda() -> Iterator[SandboxHandle]:
    """A simulator playing MTN Uganda (accepts the simulator's credentials from settings)."""
    handle = start_sandbox(SandboxConfig(target_environment="mtnuganda", delay_seconds=0.3))
    yield handle
    handle.stop()


@pytest.fixture
def sandbox_market() -> Iterator[SandboxHandle]:
    handle = start_sandbox(SandboxConfig(target_environment="sandbox", delay_seconds=0.3))
    yield handle
    handle.stop()


def simulator_credentials(settings, **changes: str) -> dict[str, dict[str, str]]:
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
    return credentials


def set_account(
    settings,
    base_url: str,
    *,
    name: str = "ug",
    env: str = "mtnuganda",
    currency: str = "UGX",
    tenant_slug: str | None = None,
    **changes: str,
):
    return mtn_account_set(
        name=name,
        target_environment=env,
        currencies=[currency],
        credentials=simulator_credentials(settings, **changes),
        base_url=base_url,
        tenant_slug=tenant_slug,
        actor=Actor.system(),
    )


def run_check(name: str) -> tuple[dict, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("mtn_account_check", name, stdout=out)
    except CommandError as error:
        return json.loads(out.getvalue()), error
    return json.loads(out.getvalue()), None


# --- mtn_account_check ---------------------------------------------------------------------


def test_check_gets_a_token_and_the_balance_of_each_product(db, settings, uganda):
    set_account(settings, uganda.base_url)
    printed, error = run_check("ug")
    assert error is None
    assert printed == {
        "account": "ug",
        "collection": {"ok": True, "balance": "1000000", "currency": "UGX"},
        "disbursement": {"ok": True, "balance": "1000000", "currency": "UGX"},
    }


def test_check_of_default_uses_the_mtn_settings(db, settings, sandbox_market):
    settings.MTN_BASE_URL = sandbox_market.base_url
    printed, error = run_check("default")
    assert error is None
    assert printed["collection"]["ok"] is True
    assert printed["disbursement"]["currency"] == "EUR"


def test_check_names_a_refused_api_key_and_exits_non_zero(db, settings, uganda):
    set_account(settings, uganda.base_url, collection__api_key="wrong-key")
    printed, error = run_check("ug")
    assert printed["collection"]["ok"] is False
    assert printed["collection"]["code"] == "login_failed"
    assert printed["disbursement"]["ok"] is True
    assert error is not None
    assert "collection API user or API key" in str(error)
    assert "wrong-key" not in str(error)
    assert "wrong-key" not in json.dumps(printed)


def test_check_names_a_refused_subscription_key(db, settings, uganda):
    set_account(settings, uganda.base_url, disbursement__subscription_key="wrong-sub")
    printed, error = run_check("ug")
    assert printed["disbursement"]["ok"] is False
    assert "disbursement subscription key" in printed["disbursement"]["error"]
    assert error is not None


def test_check_says_when_the_target_environment_does_not_match_the_api_user(db, settings, uganda):
    set_account(settings, uganda.base_url, name="gh", env="mtnghana", currency="GHS")
    printed, error = run_check("gh")
    assert printed["collection"]["code"] == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    assert "target environment 'mtnghana'" in printed["collection"]["error"]
    assert error is not None


def test_check_says_when_mtn_cannot_be_reached(db, settings):
    set_account(settings, "http://127.0.0.1:9")
    printed, error = run_check("ug")
    assert "could not be reached" in printed["collection"]["error"]
    assert error is not None


def test_check_of_an_unknown_account_exits_non_zero(db):
    with pytest.raises(CommandError, match="no MTN account named 'nope'"):
        call_command("mtn_account_check", "nope", stdout=io.StringIO())


def test_check_of_a_product_without_credentials_leaves_it_out(db, settings, uganda):
    mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={"collection": simulator_credentials(settings)["collection"]},
        base_url=uganda.base_url,
        actor=Actor.system(),
    )
    printed, error = run_check("ug")
    assert error is None
    assert set(printed) == {"account", "collection"}


# --- mtn_sandbox_provision -----------------------------------------------------------------


def provision(base_url: str, *, collection_key: str, disbursement_key: str, host: str) -> dict:
    out = io.StringIO()
    call_command(
        "mtn_sandbox_provision",
        "sbx",
        "--collection-subscription-key",
        collection_key,
        "--disbursement-subscription-key",
        disbursement_key,
        "--callback-host",
        host,
        "--base-url",
        base_url,
        stdout=out,
    )
    return json.loads(out.getvalue())


def test_provision_creates_a_user_per_product_and_stores_a_working_account(
    db, settings, sandbox_market
):
    printed = provision(
        sandbox_market.base_url,
        collection_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
        disbursement_key=settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY,
        host="pay.example.com",
    )
    assert printed == {
        "account": "sbx",
        "tenant": None,
        "target_environment": "sandbox",
        "currencies": ["EUR"],
    }
    account = mtn_account_get(name="sbx")
    assert account.callback_url == "https://pay.example.com"
    users = sandbox_market.state.users
    assert users[account.collection_api_user].callback_host == "pay.example.com"
    assert users[account.collection_api_user].products == {"collection"}
    assert users[account.disbursement_api_user].products == {"disbursement"}
    assert account.collection_api_user != settings.MTN_COLLECTION_API_USER
    printed, error = run_check("sbx")
    assert error is None
    assert printed["collection"]["ok"] is True
    assert printed["disbursement"]["ok"] is True


def test_provision_with_a_refused_subscription_key_stores_nothing(db, settings, sandbox_market):
    with pytest.raises(CommandError, match="disbursement subscription key"):
        provision(
            sandbox_market.base_url,
            collection_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
            disbursement_key="not-a-key",
            host="pay.example.com",
        )
    assert not MtnAccount.objects.exists()


@pytest.mark.parametrize("host", ["https://pay.example.com", "pay.example.com:443", "10.0.0.1"])
def test_provision_refuses_a_callback_host_mtn_would_refuse_before_calling_it(
    db, settings, sandbox_market, host
):
    users_before = set(sandbox_market.state.users)
    with pytest.raises(CommandError, match="host name"):
        provision(
            sandbox_market.base_url,
            collection_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
            disbursement_key=settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY,
            host=host,
        )
    assert set(sandbox_market.state.users) == users_before
    assert not MtnAccount.objects.exists()


# --- rotate_encryption_key -----------------------------------------------------------------


def test_rotation_old_key_decrypts_until_rotation_then_only_the_new_key_is_needed(
    tenant, settings, uganda
):
    secret = Tenant.objects.get(pk=tenant.pk).webhook_secret  # under the dev key
    dev_key = settings.DEV_FIELD_ENCRYPTION_KEY
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY, dev_key]
    set_account(settings, uganda.base_url)  # under OLD_KEY

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY, dev_key]
    assert run_check("ug")[1] is None  # the old keys still decrypt
    assert Tenant.objects.get(pk=tenant.pk).webhook_secret == secret
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert json.loads(out.getvalue())["reencrypted"] == {
        "mtn.MtnAccount": 1,
        "tenants.Tenant": 1,
    }
    assert AuditEvent.objects.filter(action="encryption_key.rotated").count() == 1

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    assert Tenant.objects.get(pk=tenant.pk).webhook_secret == secret
    printed, error = run_check("ug")
    assert error is None
    assert printed["collection"]["ok"] is True


def test_without_the_key_a_secret_was_encrypted_with_everything_fails_loudly(
    tenant, settings, uganda
):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    set_account(settings, uganda.base_url)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(SecretDecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        _ = mtn_account_get(name="ug").collection_api_key
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("mtn_account_check", "ug", stdout=io.StringIO())
    assert not uganda.state.tokens  # nothing reached MTN, no ciphertext sent as a credential


def test_rotation_missing_an_old_key_changes_nothing_and_exits_non_zero(tenant, settings, uganda):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    set_account(settings, uganda.base_url)
    before = list(MtnAccount.objects.values_list("collection_api_key", flat=True))
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match="Nothing was re-encrypted"):
        call_command("rotate_encryption_key", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    after = list(MtnAccount.objects.values_list("collection_api_key", flat=True))
    assert [sealed.token for sealed in after] == [sealed.token for sealed in before]
    assert not AuditEvent.objects.filter(action="encryption_key.rotated").exists()


def test_provision_refuses_a_plain_http_base_url_outside_loopback(db, settings):
    with pytest.raises(CommandError, match="https"):
        provision(
            "http://sandbox.example.com",
            collection_key="k1",
            disbursement_key="k2",
            host="pay.example.com",
        )
    assert not MtnAccount.objects.exists()
