"""The simulator as one MTN market with its own credentials, and MTN's sandbox
provisioning API as the ``momo-init`` tool of MTN's SDKs drives it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from mtn.client import (
    MtnClient,
    MtnCredentials,
    SandboxUser,
    provision_sandbox_user,
    sandbox_user,
)
from mtn.errors import MtnAuthenticationError, MtnConfigurationError, MtnNotFoundError
from mtn.sandbox import ProductCredentials, SandboxConfig, SandboxHandle, start_sandbox

from .conftest import fast_policy, sandbox_client_config

pytestmark = pytest.mark.e2e

UG_COLLECTION = ProductCredentials("ug-col-key", "7d1c5e3a-8b2f-4a6d-9c0e-1f2a3b4c5d6e", "ug-col")
UG_DISBURSEMENT = ProductCredentials("ug-dis-key", "2e4f6a8c-0b1d-4e3f-8a5b-7c9d0e1f2a3b", "ug-dis")


@pytest.fixture
def uganda() -> Iterator[SandboxHandle]:
    handle = start_sandbox(
        SandboxConfig(delay_seconds=0.2, seed=3),
        target_environment="mtnuganda",
        collection=UG_COLLECTION,
        disbursement=UG_DISBURSEMENT,
    )
    yield handle
    handle.stop()


def uganda_client(handle: SandboxHandle, **overrides) -> MtnClient:
    values = {
        "target_environment": "mtnuganda",
        "collection": MtnCredentials(*_fields(UG_COLLECTION)),
        "disbursement": MtnCredentials(*_fields(UG_DISBURSEMENT)),
        **overrides,
    }
    config = sandbox_client_config(handle.base_url, **values)
    return MtnClient(config, retry_policy=fast_policy(config))


def _fields(creds: ProductCredentials) -> tuple[str, str, str]:
    return creds.subscription_key, creds.api_user, creds.api_key


def pay(client: MtnClient, currency: str = "UGX", amount: str = "5000") -> uuid.UUID:
    ref = uuid.uuid4()
    client.request_to_pay(
        reference_id=ref,
        amount=amount,
        currency=currency,
        external_id="ug-1",
        payer_msisdn="256772123456",
    )
    return ref


def test_market_takes_its_own_currency_and_refuses_others(uganda):
    client = uganda_client(uganda)
    ref = pay(client)
    refused = uuid.uuid4()

    with pytest.raises(MtnConfigurationError) as info:
        client.request_to_pay(
            reference_id=refused,
            amount="10",
            currency="EUR",
            external_id="x",
            payer_msisdn="256772123456",
        )

    assert uganda.config.currency == "UGX"
    assert client.request_to_pay_status(reference_id=ref).status == "SUCCESSFUL"
    assert (info.value.status_code, info.value.code) == (500, "INVALID_CURRENCY")
    assert info.value.message == "Currency not supported."
    assert uganda.state.transaction(refused) is None


def test_market_refuses_another_target_environment(uganda):
    client = uganda_client(uganda, target_environment="sandbox")

    with pytest.raises(MtnConfigurationError) as info:
        pay(client)

    assert info.value.code == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    assert uganda.state.all_transactions() == []


def test_market_balance_is_in_its_currency(uganda):
    balance = uganda_client(uganda).account_balance(product="disbursement")

    assert balance.currency == "UGX"


def test_market_accepts_only_its_own_credentials(uganda):
    platform = sandbox_client_config(uganda.base_url, target_environment="mtnuganda")
    client = MtnClient(platform, retry_policy=fast_policy(platform))

    with pytest.raises(MtnAuthenticationError) as info:
        pay(client)

    assert info.value.status_code == 401
    assert "subscription key" in info.value.message
    assert uganda.state.tokens_issued == {"collection": 0, "disbursement": 0}


def test_currency_can_be_set_apart_from_the_market():
    handle = start_sandbox(target_environment="mtnliberia", currency="usd")
    try:
        assert handle.config.currency == "USD"
        assert handle.config.target_environment == "mtnliberia"
    finally:
        handle.stop()


def test_unknown_environment_without_currency_accepts_any_currency():
    handle = start_sandbox(target_environment="mtnatlantis")
    try:
        config = sandbox_client_config(handle.base_url, target_environment="mtnatlantis")
        client = MtnClient(config, retry_policy=fast_policy(config))
        ref = pay(client, currency="XYZ", amount="3")
    finally:
        handle.stop()

    assert handle.config.currency is None
    assert ref


# --- provisioning (reference section 2), as momo-init does it --------------------------------


def momo_init(base_url: str, subscription_key: str, host: str) -> tuple[str, requests.Response]:
    """What sparkplug's ``momo-init`` sends: a JSON body for the user, ``{}`` for the key."""
    user_id = str(uuid.uuid4())
    headers = {
        "X-Reference-Id": user_id,
        "Content-Type": "application/json",
        "Ocp-Apim-Subscription-Key": subscription_key,
    }
    created = requests.post(
        f"{base_url}/v1_0/apiuser",
        data=json.dumps({"providerCallbackHost": host}),
        headers=headers,
        timeout=2,
    )
    assert created.status_code == 201, created.text
    assert created.content == b""
    del headers["X-Reference-Id"]
    return user_id, requests.post(
        f"{base_url}/v1_0/apiuser/{user_id}/apikey", data=json.dumps({}), headers=headers, timeout=2
    )


def test_momo_init_flow_gives_working_credentials(sandbox):
    key = settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY
    user_id, api_key = momo_init(sandbox.base_url, key, "localhost")

    info = requests.get(
        f"{sandbox.base_url}/v1_0/apiuser/{user_id}",
        headers={"Ocp-Apim-Subscription-Key": key},
        timeout=2,
    )
    config = sandbox_client_config(
        sandbox.base_url,
        disbursement=MtnCredentials(key, user_id, api_key.json()["apiKey"]),
    )
    balance = MtnClient(config, retry_policy=fast_policy(config)).account_balance(
        product="disbursement"
    )

    assert api_key.status_code == 201
    assert set(api_key.json()) == {"apiKey"}
    assert len(api_key.json()["apiKey"]) == 32
    assert info.json() == {"providerCallbackHost": "localhost", "targetEnvironment": "sandbox"}
    assert balance.currency == "EUR"


def test_provisioned_user_is_scoped_to_the_product_whose_key_made_it(sandbox):
    key = settings.MTN_COLLECTION_SUBSCRIPTION_KEY
    user_id, api_key = momo_init(sandbox.base_url, key, "pay.example.com")
    config = sandbox_client_config(
        sandbox.base_url,
        disbursement=MtnCredentials(
            settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY, user_id, api_key.json()["apiKey"]
        ),
    )
    client = MtnClient(config, retry_policy=fast_policy(config))

    token = client.get_token("disbursement")
    with pytest.raises(MtnConfigurationError) as info:
        client.account_balance(product="disbursement")

    assert token
    assert info.value.code == "NOT_ALLOWED_TARGET_ENVIRONMENT"


def test_a_new_api_key_replaces_the_old_one(sandbox):
    key = settings.MTN_COLLECTION_SUBSCRIPTION_KEY
    user_id, first = momo_init(sandbox.base_url, key, "pay.example.com")
    second = requests.post(
        f"{sandbox.base_url}/v1_0/apiuser/{user_id}/apikey",
        headers={"Ocp-Apim-Subscription-Key": key},
        timeout=2,
    )

    def login(api_key: str) -> int:
        return requests.post(
            f"{sandbox.base_url}/collection/token/",
            auth=(user_id, api_key),
            headers={"Ocp-Apim-Subscription-Key": key},
            timeout=2,
        ).status_code

    assert second.json()["apiKey"] != first.json()["apiKey"]
    assert (login(first.json()["apiKey"]), login(second.json()["apiKey"])) == (500, 200)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"X-Reference-Id": "not-a-uuid"}, {"providerCallbackHost": "pay.example.com"}, 400),
        ({"X-Reference-Id": str(uuid.uuid1())}, {"providerCallbackHost": "pay.example.com"}, 400),
        ({}, {"providerCallbackHost": "pay.example.com"}, 400),
        ({"X-Reference-Id": None}, {"providerCallbackHost": "https://pay.example.com"}, 400),
        ({"X-Reference-Id": None}, {"providerCallbackHost": "pay.example.com:443"}, 400),
        ({"X-Reference-Id": None}, {"providerCallbackHost": "203.0.113.7"}, 400),
        ({"X-Reference-Id": None}, {}, 400),
        ({"X-Reference-Id": None, "Ocp-Apim-Subscription-Key": "wrong"}, {}, 401),
        ({"X-Reference-Id": None, "Ocp-Apim-Subscription-Key": ""}, {}, 401),
    ],
)
def test_provisioning_refuses_bad_requests_and_creates_nothing(sandbox, headers, body, status):
    sent = {"Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY, **headers}
    if sent.get("X-Reference-Id", "") is None:
        sent["X-Reference-Id"] = str(uuid.uuid4())
    users_before = set(sandbox.state.users)

    response = requests.post(f"{sandbox.base_url}/v1_0/apiuser", json=body, headers=sent, timeout=2)

    assert response.status_code == status
    assert set(sandbox.state.users) == users_before


def test_provisioning_accepts_a_loopback_callback_host(sandbox):
    user_id, api_key = momo_init(
        sandbox.base_url, settings.MTN_COLLECTION_SUBSCRIPTION_KEY, "127.0.0.1"
    )

    assert api_key.status_code == 201
    assert sandbox.state.users[user_id].callback_host == "127.0.0.1"


def test_api_key_for_an_unknown_user_is_404(sandbox):
    response = requests.post(
        f"{sandbox.base_url}/v1_0/apiuser/{uuid.uuid4()}/apikey",
        headers={"Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY},
        timeout=2,
    )

    assert response.status_code == 404
    assert response.json()["code"] == "RESOURCE_NOT_FOUND"


def test_a_production_market_has_no_provisioning_api(uganda):
    response = requests.post(
        f"{uganda.base_url}/v1_0/apiuser",
        json={"providerCallbackHost": "pay.example.com"},
        headers={
            "X-Reference-Id": str(uuid.uuid4()),
            "Ocp-Apim-Subscription-Key": UG_COLLECTION.subscription_key,
        },
        timeout=2,
    )

    assert response.status_code == 404
    assert response.json()["statusCode"] == 404
    assert set(uganda.state.users) == {UG_COLLECTION.api_user, UG_DISBURSEMENT.api_user}


# --- the client's provisioning functions -----------------------------------------------------


def test_provision_sandbox_user_gives_credentials_that_work(sandbox, caplog):
    key = settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY

    with caplog.at_level(logging.DEBUG):
        creds = provision_sandbox_user(
            base_url=sandbox.base_url, subscription_key=key, callback_host="pay.example.com"
        )
    described = sandbox_user(
        base_url=sandbox.base_url, subscription_key=key, api_user=creds.api_user
    )
    config = sandbox_client_config(sandbox.base_url, disbursement=creds)
    balance = MtnClient(config, retry_policy=fast_policy(config)).account_balance(
        product="disbursement"
    )

    assert uuid.UUID(creds.api_user).version == 4
    assert creds.subscription_key == key
    assert creds.api_key not in caplog.text
    assert described == SandboxUser(creds.api_user, "pay.example.com", "sandbox")
    assert balance.currency == "EUR"
    assert sandbox.state.users[creds.api_user].products == {"disbursement"}
    assert sandbox.state.request_count(path_prefix="/v1_0/apiuser") == 3


def test_provision_sandbox_user_with_a_wrong_key_is_an_authentication_error(sandbox):
    users_before = set(sandbox.state.users)

    with pytest.raises(MtnAuthenticationError) as info:
        provision_sandbox_user(
            base_url=sandbox.base_url, subscription_key="wrong", callback_host="pay.example.com"
        )

    assert info.value.code == "SUBSCRIPTION_KEY_REJECTED"
    assert set(sandbox.state.users) == users_before


def test_provision_sandbox_user_against_a_production_market_is_not_found(uganda):
    with pytest.raises(MtnNotFoundError):
        provision_sandbox_user(
            base_url=uganda.base_url,
            subscription_key=UG_COLLECTION.subscription_key,
            callback_host="pay.example.com",
        )


@pytest.mark.parametrize("host", ["https://pay.example.com", "pay.example.com:8000", "", "a/b"])
def test_provision_sandbox_user_refuses_a_host_that_is_not_a_host_name(sandbox, host):
    with pytest.raises(ValueError):
        provision_sandbox_user(
            base_url=sandbox.base_url,
            subscription_key=settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
            callback_host=host,
        )

    assert sandbox.state.request_count(path_prefix="/v1_0/apiuser") == 0
