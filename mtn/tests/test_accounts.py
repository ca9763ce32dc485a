"""Per-account configurations, token caching per (account, product) including with the
shared cache down, and the account check an operator runs (``mtn_account_check``)."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pytest
import requests
import responses
from django.test import override_settings

from mtn import client as client_module
from mtn import tokens
from mtn.client import (
    AccountCheck,
    MtnClient,
    MtnConfig,
    MtnCredentials,
    ProductCheck,
    check_account,
    client_for,
)
from mtn.errors import MtnConfigurationError
from mtn.retry import RetryPolicy

BASE = "https://mtn.test"
COLLECTION = MtnCredentials("col-sub-key", "col-user", "col-api-key")
DISBURSEMENT = MtnCredentials("dis-sub-key", "dis-user", "dis-api-key")


def config(**overrides) -> MtnConfig:
    values = {
        "account": "uganda",
        "base_url": BASE,
        "target_environment": "mtnuganda",
        "collection": COLLECTION,
        "disbursement": DISBURSEMENT,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "max_tries": 1,
    }
    values.update(overrides)
    return MtnConfig.for_account(**values)


def add_token(product: str = "collection", token: str = "tok", base: str = BASE) -> None:  # noqa: S107
    responses.add(
        responses.POST,
        f"{base}/{product}/token/",
        json={"access_token": token, "token_type": "access_token", "expires_in": 3600},
    )


def token_calls(product: str = "collection") -> list:
    return [c for c in responses.calls if c.request.url.endswith(f"/{product}/token/")]


# --- configuration ---------------------------------------------------------------------------


@override_settings(
    MTN_CONNECT_TIMEOUT=2.5, MTN_READ_TIMEOUT=7, MTN_SUBMIT_MAX_TRIES=5, MTN_SUBMIT_MAX_SECONDS=9
)
def test_for_account_takes_timeouts_from_settings_unless_given():
    built = MtnConfig.for_account(
        account="ghana",
        base_url="https://proxy.momoapi.mtn.com/",
        target_environment="mtnghana",
        collection=COLLECTION,
        read_timeout=4.0,
    )

    assert built.account == "ghana"
    assert built.base_url == "https://proxy.momoapi.mtn.com"
    assert (built.connect_timeout, built.read_timeout) == (2.5, 4.0)
    assert (built.max_tries, built.max_seconds) == (5, 9.0)
    assert built.products == ("collection",)
    assert built.disbursement is None


def test_from_settings_is_the_default_account_with_both_products(settings):
    built = MtnConfig.from_settings()

    assert built.account == "default"
    assert built.products == ("collection", "disbursement")
    assert built.collection.api_user == settings.MTN_COLLECTION_API_USER
    assert built == MtnConfig.from_settings()
    assert hash(built) == hash(MtnConfig.from_settings())


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "mtn.test"},
        {"target_environment": " "},
        {"account": ""},
        {"connect_timeout": 0},
    ],
)
def test_config_refuses_unusable_values(overrides):
    with pytest.raises(ValueError):
        config(**overrides)


@responses.activate
def test_a_product_without_credentials_fails_before_any_call():
    client = MtnClient(config(disbursement=None))

    with pytest.raises(MtnConfigurationError) as info:
        client.transfer(
            reference_id=uuid.uuid4(),
            amount="1000",
            currency="UGX",
            external_id="po",
            payee_msisdn="256772123456",
        )

    assert info.value.code == "PRODUCT_NOT_CONFIGURED"
    assert "uganda" in info.value.message
    assert info.value.retryable is False
    assert len(responses.calls) == 0


def test_secrets_are_not_in_the_configs_repr():
    text = repr(config())

    assert "col-sub-key" not in text
    assert "col-api-key" not in text
    assert "col-user" in text


# --- tokens per account ----------------------------------------------------------------------


@responses.activate
def test_tokens_are_cached_per_account_and_product():
    add_token("collection", "ug-col")
    add_token("collection", "gh-col")
    add_token("disbursement", "ug-dis")
    uganda = MtnClient(config(account="uganda"))
    ghana = MtnClient(config(account="ghana"))

    assert uganda.get_token("collection") == "ug-col"
    assert ghana.get_token("collection") == "gh-col"  # same host and user, another account
    assert uganda.get_token("disbursement") == "ug-dis"
    assert MtnClient(config(account="uganda")).get_token("collection") == "ug-col"  # shared
    assert len(token_calls("collection")) == 2
    assert len(token_calls("disbursement")) == 1


@responses.activate
def test_new_credentials_on_an_account_get_a_new_token():
    add_token("collection", "old-user-token")
    add_token("collection", "new-user-token")
    MtnClient(config()).get_token("collection")

    renewed = config(collection=MtnCredentials("col-sub-key", "new-user", "new-key"))

    assert MtnClient(renewed).get_token("collection") == "new-user-token"


def test_client_for_gives_one_client_per_config_in_a_thread():
    first = client_for(config())

    assert client_for(config()) is first
    assert client_for(config(account="ghana")) is not first
    assert client_for(config()).session is first.session


# --- the shared cache down ------------------------------------------------------------------


class BrokenCache:
    """A cache whose every operation raises, as django-redis does with Redis down."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args, **kwargs):
        self.calls += 1
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    get = set = add = delete = _fail


@pytest.fixture
def broken_cache(monkeypatch) -> BrokenCache:
    broken = BrokenCache()
    monkeypatch.setattr(tokens, "cache", broken)
    monkeypatch.setattr(tokens, "_cache_warned_at", None)
    return broken


@responses.activate
def test_payments_go_on_with_one_token_while_the_cache_is_down(broken_cache, monkeypatch):
    # Trust the memo alone for no time at all, so that every call asks the broken cache.
    monkeypatch.setattr(client_module, "TOKEN_MEMO_SECONDS", 0.0)
    add_token("collection", "memo-token")
    responses.add(responses.POST, f"{BASE}/collection/v1_0/requesttopay", status=202)
    client = MtnClient(config(), retry_policy=RetryPolicy(max_tries=1))

    for _ in range(3):
        client.request_to_pay(
            reference_id=uuid.uuid4(),
            amount="1000",
            currency="UGX",
            external_id="p",
            payer_msisdn="256772123456",
        )

    posts = [c for c in responses.calls if c.request.url.endswith("/requesttopay")]
    assert [c.request.headers["Authorization"] for c in posts] == ["Bearer memo-token"] * 3
    assert len(token_calls()) == 1
    assert broken_cache.calls >= 3  # it kept trying the cache


@responses.activate
def test_cache_down_is_warned_about_at_most_once_a_minute(broken_cache, caplog, monkeypatch):
    monkeypatch.setattr(client_module, "TOKEN_MEMO_SECONDS", 0.0)
    add_token()
    client = MtnClient(config())

    with caplog.at_level(logging.WARNING, logger="mtn.tokens"):
        for _ in range(5):
            client.get_token("collection")
    warnings = [r for r in caplog.records if "token cache unavailable" in r.getMessage()]

    assert len(warnings) == 1
    assert "ConnectionError" in warnings[0].getMessage()
    assert "col-api-key" not in caplog.text


@responses.activate
def test_cache_down_still_refreshes_a_token_mtn_refused(broken_cache):
    add_token("collection", "old")
    add_token("collection", "new")
    url = f"{BASE}/collection/v1_0/requesttopay"
    responses.add(responses.POST, url, status=401, json={"error": "invalid_token"})
    responses.add(responses.POST, url, status=202)
    client = MtnClient(config(), retry_policy=RetryPolicy(max_tries=1))

    result = client.request_to_pay(
        reference_id=uuid.uuid4(),
        amount="1000",
        currency="UGX",
        external_id="p",
        payer_msisdn="256772123456",
    )

    assert result.already_existed is False
    assert client.get_token("collection") == "new"
    assert len(token_calls()) == 2


# --- the account check -----------------------------------------------------------------------


def add_balance(product: str, **kwargs) -> None:
    kwargs.setdefault("json", {"availableBalance": "250000", "currency": "UGX"})
    responses.add(responses.GET, f"{BASE}/{product}/v1_0/account/balance", **kwargs)


@responses.activate
def test_check_account_gets_a_new_token_and_the_balance_per_product():
    add_token("collection", "cached")
    add_token("collection", "fresh")
    add_token("disbursement", "dis")
    add_balance("collection")
    add_balance("disbursement", json={"availableBalance": "10.5", "currency": "UGX"})
    account = config()
    MtnClient(account).get_token("collection")

    result = check_account(account)

    assert result.ok
    assert result.as_dict() == {
        "account": "uganda",
        "collection": {"ok": True, "balance": "250000", "currency": "UGX"},
        "disbursement": {"ok": True, "balance": "10.5", "currency": "UGX"},
    }
    balance_call = [c for c in responses.calls if "/collection/v1_0/account" in c.request.url]
    assert balance_call[0].request.headers["Authorization"] == "Bearer fresh"
    assert balance_call[0].request.headers["X-Target-Environment"] == "mtnuganda"


@responses.activate
def test_check_account_names_a_refused_subscription_key():
    responses.add(
        responses.POST,
        f"{BASE}/collection/token/",
        status=401,
        json={
            "statusCode": 401,
            "message": "Access denied due to invalid subscription key. Make sure to provide "
            "a valid key for an active subscription.",
        },
    )

    result = check_account(config(disbursement=None))

    [check] = result.checks
    assert not result.ok
    assert check.code == "SUBSCRIPTION_KEY_REJECTED"
    assert "collection subscription key" in check.problem
    assert "col-sub-key" not in check.problem
    assert result.as_dict()["collection"] == {
        "ok": False,
        "code": "SUBSCRIPTION_KEY_REJECTED",
        "error": check.problem,
    }


@responses.activate
def test_check_account_names_a_refused_api_user_or_key():
    add_token("collection")
    add_balance("collection")
    responses.add(
        responses.POST, f"{BASE}/disbursement/token/", status=500, json={"error": "login_failed"}
    )

    result = check_account(config())

    collection, disbursement = result.checks
    assert collection.ok
    assert not disbursement.ok
    assert disbursement.code == "login_failed"
    assert "disbursement API user or API key" in disbursement.problem
    assert "dis-api-key" not in disbursement.problem
    assert not result.ok


@responses.activate
def test_check_account_says_the_target_environment_does_not_match():
    add_token("collection")
    add_balance(
        "collection",
        status=500,
        json={
            "code": "NOT_ALLOWED_TARGET_ENVIRONMENT",
            "message": "Access to target environment is forbidden.",
        },
    )

    [check] = check_account(config(disbursement=None)).checks

    assert check.code == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    assert "target environment 'mtnuganda'" in check.problem


@responses.activate
def test_check_account_says_when_mtn_cannot_be_reached():
    responses.add(
        responses.POST, f"{BASE}/collection/token/", body=requests.ConnectionError("refused")
    )

    [check] = check_account(config(disbursement=None)).checks

    assert check.code == "NETWORK_ERROR"
    assert "could not be reached at https://mtn.test" in check.problem


def test_check_of_an_account_without_products_is_not_ok():
    result = AccountCheck(account="empty", target_environment="sandbox", checks=())

    assert not result.ok
    assert ProductCheck(product="collection", ok=True, balance=Decimal(1), currency="EUR").ok
