"""The simulator behaves as MTN does where a looser one would mislead (issue 20): the
callback-host rule, answers without financialTransactionId, errors at MTN's time and in
MTN's shapes, tokens across products, the sandbox numbers' scope, callbacks by POST, and the
requesttopay delivery notification."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings

from mtn.client import MtnClient
from mtn.errors import MtnConfigurationError
from mtn.management.commands.mtn_sandbox import Command
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox
from mtn.sandbox import collection as sim_collection
from mtn.sandbox.scenarios import SUCCESS_WITHOUT_FINANCIAL_ID_NUMBER

from .conftest import CALLBACK_HOST, CallbackReceiver, fast_policy, sandbox_client_config

pytestmark = pytest.mark.e2e

SUCCESS = "256772123456"


def pay(client: MtnClient, msisdn: str = SUCCESS, **overrides) -> uuid.UUID:
    ref = overrides.pop("reference_id", None) or uuid.uuid4()
    values = {
        "reference_id": ref,
        "amount": "12.50",
        "currency": "EUR",
        "external_id": "pay_1",
        "payer_msisdn": msisdn,
        "callback_url": None,
    }
    values.update(overrides)
    client.request_to_pay(**values)
    return ref


def payout(client: MtnClient, msisdn: str = SUCCESS, **overrides) -> uuid.UUID:
    ref = overrides.pop("reference_id", None) or uuid.uuid4()
    values = {
        "reference_id": ref,
        "amount": "50",
        "currency": overrides.pop("currency", "EUR"),
        "external_id": "po_1",
        "payee_msisdn": msisdn,
        "callback_url": None,
    }
    values.update(overrides)
    client.transfer(**values)
    return ref


def client_for(handle: SandboxHandle, **overrides) -> MtnClient:
    config = sandbox_client_config(handle.base_url, **overrides)
    return MtnClient(config, retry_policy=fast_policy(config))


def token(base_url: str, product: str = "collection", **kwargs) -> requests.Response:
    upper = product.upper()
    return requests.post(
        f"{base_url}/{product}/token/",
        auth=(
            getattr(settings, f"MTN_{upper}_API_USER"),
            getattr(settings, f"MTN_{upper}_API_KEY"),
        ),
        headers={"Ocp-Apim-Subscription-Key": getattr(settings, f"MTN_{upper}_SUBSCRIPTION_KEY")},
        timeout=2,
        **kwargs,
    )


def headers(bearer: str, product: str = "collection", ref: str | None = None) -> dict[str, str]:
    sent = {
        "Authorization": f"Bearer {bearer}",
        "X-Target-Environment": "sandbox",
        "Ocp-Apim-Subscription-Key": getattr(settings, f"MTN_{product.upper()}_SUBSCRIPTION_KEY"),
    }
    if ref:
        sent["X-Reference-Id"] = ref
    return sent


RTP_BODY = {
    "amount": "10",
    "currency": "EUR",
    "externalId": "x",
    "payer": {"partyIdType": "MSISDN", "partyId": SUCCESS},
}


@pytest.fixture
def uganda() -> Iterator[SandboxHandle]:
    handle = start_sandbox(SandboxConfig(delay_seconds=0.1), target_environment="mtnuganda")
    yield handle
    handle.stop()


# --- 1. the callback-host rule -----------------------------------------------------------------


def test_seeded_users_host_is_mtn_callback_urls_host(settings):
    settings.MTN_CALLBACK_URL = "https://Pay.Example.com:8443/base"
    assert SandboxConfig().provider_callback_host == "pay.example.com"
    settings.MTN_CALLBACK_URL = ""
    assert SandboxConfig().provider_callback_host == "localhost"
    # There is no "any host": an empty or None host is the default one.
    assert SandboxConfig(provider_callback_host=None).provider_callback_host == "localhost"


@pytest.mark.parametrize("kind", ["payment", "payout"])
def test_callback_url_on_another_host_is_500_and_creates_nothing(sandbox, kind):
    client = client_for(sandbox)
    ref = uuid.uuid4()
    send = pay if kind == "payment" else payout

    with pytest.raises(MtnConfigurationError) as info:
        send(client, reference_id=ref, callback_url="http://localhost:8000/api/v1/webhooks/mtn/t")

    assert (info.value.status_code, info.value.code) == (500, "INVALID_CALLBACK_URL_HOST")
    assert info.value.body == {
        "code": "INVALID_CALLBACK_URL_HOST",
        "message": "Callback URL does not match the configured value.",
    }
    assert sandbox.state.all_transactions() == []
    # Nothing was created, so the same reference with the right host (or none) goes through.
    send(client, reference_id=ref, callback_url=f"http://{CALLBACK_HOST}:8000/cb")
    assert sandbox.state.post_count(ref) == 1


def test_the_commands_defaults_are_post_callbacks_and_mtn_callback_urls_host():
    parser = Command().create_parser("manage.py", "mtn_sandbox")
    options = vars(parser.parse_args([]))
    assert options["callback_method"] == "POST"
    assert options["provider_callback_host"] is None  # then MTN_CALLBACK_URL's host


# --- 2. financialTransactionId -----------------------------------------------------------------


@pytest.mark.parametrize("number", ["46733123450", "46733123451", "46733123455"])
def test_failed_answers_and_callbacks_carry_no_financial_transaction_id(
    sandbox, callback_receiver: CallbackReceiver, number
):
    client = client_for(sandbox)
    ref = pay(client, number, callback_url=f"{callback_receiver.base_url}/cb")

    status = client.request_to_pay_status(reference_id=ref)
    [callback] = callback_receiver.wait_for(1)

    assert status.status == "FAILED"
    assert "financialTransactionId" not in status.raw
    assert status.financial_transaction_id is None
    assert "financialTransactionId" not in callback.json()


def test_490_succeeds_without_financial_transaction_id(sandbox, callback_receiver):
    client = client_for(sandbox)
    ref = pay(
        client, SUCCESS_WITHOUT_FINANCIAL_ID_NUMBER, callback_url=f"{callback_receiver.base_url}/c"
    )
    transfer = payout(client, SUCCESS_WITHOUT_FINANCIAL_ID_NUMBER)

    status = client.request_to_pay_status(reference_id=ref)
    [callback] = callback_receiver.wait_for(1)

    assert status.status == "SUCCESSFUL"
    assert status.financial_transaction_id is None
    assert "financialTransactionId" not in callback.json()
    assert callback.json()["status"] == "SUCCESSFUL"
    assert client.transfer_status(reference_id=transfer).financial_transaction_id is None
    # Any other success has one.
    assert client.request_to_pay_status(reference_id=pay(client)).financial_transaction_id


# --- 3. errors at MTN's time -------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+256772123456", "256 772 123456", "0772-123456"])
def test_an_msisdn_mtn_cannot_read_is_accepted_then_payer_not_found(sandbox, number):
    client = client_for(sandbox)
    token_value = token(sandbox.base_url).json()["access_token"]
    ref = str(uuid.uuid4())
    body = {**RTP_BODY, "payer": {"partyIdType": "MSISDN", "partyId": number}}

    response = requests.post(
        f"{sandbox.base_url}/collection/v1_0/requesttopay",
        json=body,
        headers=headers(token_value, ref=ref),
        timeout=2,
    )
    status = client.request_to_pay_status(reference_id=ref)

    assert (response.status_code, response.content) == (202, b"")
    assert (status.status, status.reason_code) == ("FAILED", "PAYER_NOT_FOUND")
    assert status.raw["payer"]["partyId"] == number


def test_a_payee_mtn_cannot_read_is_payee_not_found_in_any_market(uganda):
    client = client_for(uganda, target_environment="mtnuganda")

    ref = payout(client, "+256772123456", currency="UGX")

    status = client.transfer_status(reference_id=ref)
    assert (status.status, status.reason_code) == ("FAILED", "PAYEE_NOT_FOUND")


@pytest.mark.parametrize(
    "payer",
    [None, {}, {"partyIdType": "MSISDN"}, {"partyIdType": "MSISDN", "partyId": ""}],
)
def test_an_empty_payer_is_500_and_creates_nothing(sandbox, payer):
    token_value = token(sandbox.base_url).json()["access_token"]
    body = {key: value for key, value in RTP_BODY.items() if key != "payer"}
    if payer is not None:
        body["payer"] = payer

    response = requests.post(
        f"{sandbox.base_url}/collection/v1_0/requesttopay",
        json=body,
        headers=headers(token_value, ref=str(uuid.uuid4())),
        timeout=2,
    )

    assert response.status_code == 500
    assert sandbox.state.all_transactions() == []


def test_a_bad_party_id_type_is_still_400(sandbox):
    token_value = token(sandbox.base_url).json()["access_token"]
    body = {**RTP_BODY, "payer": {"partyIdType": "PHONE", "partyId": SUCCESS}}

    response = requests.post(
        f"{sandbox.base_url}/collection/v1_0/requesttopay",
        json=body,
        headers=headers(token_value, ref=str(uuid.uuid4())),
        timeout=2,
    )

    assert response.status_code == 400
    assert sandbox.state.all_transactions() == []


@pytest.mark.parametrize(
    "path",
    [
        "/collection/v1_0/requesttopay/not-a-uuid",
        "/disbursement/v1_0/transfer/123",
        "/disbursement/v1_0/refund/abc",
    ],
)
def test_a_reference_that_is_not_a_uuid_is_400_not_404(sandbox, path):
    product = path.split("/")[1]
    bearer = token(sandbox.base_url, product).json()["access_token"]

    response = requests.get(
        f"{sandbox.base_url}{path}", headers=headers(bearer, product), timeout=2
    )

    assert response.status_code == 400


def test_an_api_user_id_that_is_not_a_uuid_is_400(sandbox):
    key = {"Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY}

    read = requests.get(f"{sandbox.base_url}/v1_0/apiuser/nobody", headers=key, timeout=2)
    make_key = requests.post(
        f"{sandbox.base_url}/v1_0/apiuser/nobody/apikey", headers=key, timeout=2
    )
    unknown = requests.get(
        f"{sandbox.base_url}/v1_0/apiuser/{uuid.uuid4()}", headers=key, timeout=2
    )

    assert (read.status_code, make_key.status_code, unknown.status_code) == (400, 400, 404)


# --- 4. error shapes ---------------------------------------------------------------------------


def test_a_bad_bearer_is_401_without_status_code_and_the_client_mints_again(sandbox):
    client = client_for(sandbox)
    pay(client)
    sandbox.expire_tokens()

    response = requests.get(
        f"{sandbox.base_url}/collection/v1_0/account/balance",
        headers=headers("expired-or-invented"),
        timeout=2,
    )
    pay(client)  # refreshed once, as MTN-Group's PHP SDK does for a 401 without statusCode

    assert response.status_code == 401
    assert "statusCode" not in response.json()
    assert sandbox.state.tokens_issued["collection"] == 2


# --- 6. tokens, keys and paths -----------------------------------------------------------------


def test_a_collection_token_pays_a_disbursement_transfer(sandbox):
    # MTN's sandbox notebook (2024): /collection/token/, then /disbursement/v1_0/transfer
    # with the disbursement subscription key; 202 and SUCCESSFUL.
    bearer = token(sandbox.base_url, "collection").json()["access_token"]
    ref = str(uuid.uuid4())
    body = {
        "amount": "5",
        "currency": "EUR",
        "externalId": "nb",
        "payee": {"partyIdType": "MSISDN", "partyId": SUCCESS},
    }

    created = requests.post(
        f"{sandbox.base_url}/disbursement/v1_0/transfer",
        json=body,
        headers=headers(bearer, "disbursement", ref),
        timeout=2,
    )
    read = requests.get(
        f"{sandbox.base_url}/disbursement/v1_0/transfer/{ref}",
        headers=headers(bearer, "disbursement"),
        timeout=2,
    )

    assert created.status_code == 202
    assert read.json()["status"] == "SUCCESSFUL"
    assert sandbox.state.transaction(ref)["api_user"] == settings.MTN_COLLECTION_API_USER


def test_a_user_made_for_one_product_cannot_work_the_other(sandbox):
    key = {"Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY}
    user = str(uuid.uuid4())
    requests.post(
        f"{sandbox.base_url}/v1_0/apiuser",
        json={"providerCallbackHost": "pay.example.com"},
        headers={**key, "X-Reference-Id": user},
        timeout=2,
    )
    api_key = requests.post(
        f"{sandbox.base_url}/v1_0/apiuser/{user}/apikey", headers=key, timeout=2
    ).json()["apiKey"]
    disbursement_key = settings.MTN_DISBURSEMENT_SUBSCRIPTION_KEY
    minted = requests.post(
        f"{sandbox.base_url}/disbursement/token/",
        auth=(user, api_key),
        headers={"Ocp-Apim-Subscription-Key": disbursement_key},
        timeout=2,
    )

    balance = requests.get(
        f"{sandbox.base_url}/disbursement/v1_0/account/balance",
        headers=headers(minted.json()["access_token"], "disbursement"),
        timeout=2,
    )

    assert minted.status_code == 200
    assert (balance.status_code, balance.json()["code"]) == (500, "NOT_ALLOWED_TARGET_ENVIRONMENT")


def test_the_subscription_key_may_come_as_a_query_parameter(sandbox):
    key = settings.MTN_COLLECTION_SUBSCRIPTION_KEY
    minted = requests.post(
        f"{sandbox.base_url}/collection/token/",
        params={"subscription-key": key},
        auth=(settings.MTN_COLLECTION_API_USER, settings.MTN_COLLECTION_API_KEY),
        timeout=2,
    )
    sent = headers(minted.json()["access_token"])
    del sent["Ocp-Apim-Subscription-Key"]

    balance = requests.get(
        f"{sandbox.base_url}/collection/v1_0/account/balance",
        params={"subscription-key": key},
        headers=sent,
        timeout=2,
    )
    wrong = requests.get(
        f"{sandbox.base_url}/collection/v1_0/account/balance",
        params={"subscription-key": "nope"},
        headers=sent,
        timeout=2,
    )

    assert (minted.status_code, balance.status_code) == (200, 200)
    assert (wrong.status_code, wrong.json()["statusCode"]) == (401, 401)


def test_a_double_slash_is_no_operation(sandbox):
    bearer = token(sandbox.base_url).json()["access_token"]
    ref = str(uuid.uuid4())

    response = requests.post(
        f"{sandbox.base_url}/collection//v1_0/requesttopay",
        json=RTP_BODY,
        headers=headers(bearer, ref=ref),
        timeout=2,
    )

    assert response.status_code == 404
    assert sandbox.state.all_transactions() == []


def test_a_body_on_token_is_400(sandbox):
    response = token(sandbox.base_url, json={"grant_type": "client_credentials"})

    assert response.status_code == 400
    assert sandbox.state.tokens_issued["collection"] == 0


def test_sandbox_numbers_are_ordinary_numbers_in_a_production_market(uganda):
    client = client_for(uganda, target_environment="mtnuganda")

    refs = [
        pay(client, number, currency="UGX", amount="1000")
        for number in ("46733123450", "46733123453")
    ]

    assert [client.request_to_pay_status(reference_id=r).status for r in refs] == [
        "SUCCESSFUL",
        "SUCCESSFUL",
    ]
    assert client.account_holder_active(msisdn="46733123450") is True
    assert client.account_holder_active(msisdn="46733123452") is True


# --- 5. callbacks ------------------------------------------------------------------------------


def test_callbacks_are_post_by_default_and_put_on_demand(callback_receiver: CallbackReceiver):
    methods = []
    for config in (
        SandboxConfig(provider_callback_host=CALLBACK_HOST),
        SandboxConfig(provider_callback_host=CALLBACK_HOST, callback_method="PUT"),
    ):
        handle = start_sandbox(config)
        try:
            pay(client_for(handle), callback_url=f"{callback_receiver.base_url}/cb")
            methods.append(callback_receiver.wait_for(len(methods) + 1)[-1].method)
        finally:
            handle.stop()

    assert methods == ["POST", "PUT"]


# --- 7. delivery notification ------------------------------------------------------------------


def notify(
    handle: SandboxHandle,
    ref: uuid.UUID | str,
    message: str | None = "Your order has shipped",
    *,
    product: str = "collection",
    body: dict | None = None,
    language: str | None = None,
) -> requests.Response:
    sent = headers(token(handle.base_url, product).json()["access_token"], product)
    if message is not None:
        sent["notificationMessage"] = message
    if language is not None:
        sent["Language"] = language
    return requests.post(
        f"{handle.base_url}/{product}/v1_0/requesttopay/{ref}/deliverynotification",
        json=body if body is not None else {"notificationMessage": message or ""},
        headers=sent,
        timeout=2,
    )


def test_a_delivery_notification_is_enqueued_for_a_successful_payment(sandbox):
    ref = pay(client_for(sandbox))

    response = notify(sandbox, ref, language="en")

    assert (response.status_code, response.content) == (200, b"")
    [sent] = sandbox.state.transaction(ref)["notifications"]
    assert (sent["message"], sent["language"]) == ("Your order has shipped", "en")


def test_a_delivery_notification_may_carry_its_message_in_the_body_only(sandbox):
    ref = pay(client_for(sandbox))

    response = notify(sandbox, ref, None, body={"notificationMessage": "Thank you"})

    assert response.status_code == 200
    assert sandbox.state.transaction(ref)["notifications"][0]["message"] == "Thank you"


@pytest.mark.parametrize(
    ("number", "status"), [("46733123451", 409), ("46733123453", 409), ("46733123454", 409)]
)
def test_no_delivery_notification_unless_successful(sandbox, number, status):
    ref = pay(client_for(sandbox), number)

    response = notify(sandbox, ref)

    assert (response.status_code, response.json()["code"]) == (
        status,
        "NOT_SUCCESSFULLY_COMPLETED",
    )
    assert sandbox.state.transaction(ref)["notifications"] == []


def test_delivery_notification_for_an_unknown_or_anothers_reference_is_404(sandbox):
    client = client_for(sandbox)
    transfer = payout(client)
    ref = pay(client)

    unknown = notify(sandbox, uuid.uuid4())
    not_a_payment = notify(sandbox, transfer)
    # The disbursement path with the disbursement user's token: not that user's payment.
    anothers = notify(sandbox, ref, product="disbursement")

    assert [r.status_code for r in (unknown, not_a_payment, anothers)] == [404, 404, 404]
    assert {r.json()["code"] for r in (unknown, not_a_payment, anothers)} == {"RESOURCE_NOT_FOUND"}
    assert sandbox.state.transaction(ref)["notifications"] == []


@pytest.mark.parametrize(
    ("ref", "message", "language"),
    [
        ("not-a-uuid", "Hello", None),
        (None, None, None),  # no message anywhere
        (None, "x" * 161, None),
        (None, "Hello", "english"),
    ],
)
def test_bad_delivery_notifications_are_400(sandbox, ref, message, language):
    paid = pay(client_for(sandbox))

    response = notify(sandbox, ref or paid, message, language=language)

    assert response.status_code == 400
    assert sandbox.state.transaction(paid)["notifications"] == []


def test_a_second_delivery_notification_too_soon_is_429(sandbox):
    ref = pay(client_for(sandbox))

    first, second = notify(sandbox, ref), notify(sandbox, ref, "Again")

    assert (first.status_code, second.status_code) == (200, 429)
    assert len(sandbox.state.transaction(ref)["notifications"]) == 1


def test_a_delivery_notification_too_late_is_410(sandbox):
    ref = pay(client_for(sandbox))
    with sandbox.state.lock:
        tx = sandbox.state.transactions[str(ref)]
        tx.final_at = time.time() - sim_collection.NOTIFICATION_WINDOW_SECONDS - 1

    response = notify(sandbox, ref)

    assert response.status_code == 410
    assert sandbox.state.transaction(ref)["notifications"] == []


def test_a_lost_answer_still_never_double_creates_with_the_stricter_rules(sandbox):
    # The stricter callback rule must not change the retry contract: a lost 202, a retry
    # with the same reference, a 409, one transaction.
    client = client_for(sandbox)
    sandbox.set_faults(lose_next_posts=1)

    ref = pay(client, callback_url=f"http://{CALLBACK_HOST}:9/cb")

    assert sandbox.state.post_count(ref) == 1
    assert sandbox.state.conflict_count(ref) == 1
