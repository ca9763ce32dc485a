"""End to end: the real MtnClient against the simulator over loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
import requests
from django.conf import settings

from mtn.client import MtnClient, MtnCredentials, SubmitResult
from mtn.errors import (
    MtnAuthenticationError,
    MtnConfigurationError,
    MtnNotFoundError,
    MtnRateLimitedError,
    MtnRejectedError,
    MtnRetryableError,
)
from mtn.sandbox import SandboxConfig, start_sandbox

from .conftest import fast_policy, sandbox_client_config

pytestmark = pytest.mark.e2e


def pay(
    mtn_client: MtnClient, msisdn: str = "256772123456", **overrides
) -> tuple[uuid.UUID, SubmitResult]:
    ref = overrides.pop("reference_id", None) or uuid.uuid4()
    values = {
        "reference_id": ref,
        "amount": "12.50",
        "currency": "EUR",
        "external_id": "pay_1",
        "payer_msisdn": msisdn,
        "payer_message": "Order 1",
        "payee_note": "Shop",
        "callback_url": None,
    }
    values.update(overrides)
    return ref, mtn_client.request_to_pay(**values)


def payout(
    mtn_client: MtnClient, msisdn: str = "256772123456", **overrides
) -> tuple[uuid.UUID, SubmitResult]:
    ref = overrides.pop("reference_id", None) or uuid.uuid4()
    values = {
        "reference_id": ref,
        "amount": "50",
        "currency": "EUR",
        "external_id": "po_1",
        "payee_msisdn": msisdn,
        "payer_message": None,
        "payee_note": None,
        "callback_url": None,
    }
    values.update(overrides)
    return ref, mtn_client.transfer(**values)


def client_for(handle, **overrides) -> MtnClient:
    config = sandbox_client_config(handle.base_url, **overrides)
    return MtnClient(config, retry_policy=fast_policy(config))


def test_successful_request_to_pay(mtn_client, sandbox):
    ref, result = pay(mtn_client)

    status = mtn_client.request_to_pay_status(reference_id=ref)

    assert result.already_existed is False
    assert status.status == "SUCCESSFUL"
    assert status.amount == Decimal("12.50")
    assert status.raw["amount"] == "12.5"  # MTN echoes amounts normalised
    assert status.external_id == "pay_1"
    assert status.financial_transaction_id
    assert status.party_id == "256772123456"
    assert sandbox.state.post_count(ref) == 1


COLLECTION_FAILURES = {
    "46733123450": "INTERNAL_PROCESSING_ERROR",
    "46733123451": "APPROVAL_REJECTED",
    "46733123452": "EXPIRED",
    "46733123455": "PAYER_NOT_FOUND",
    "46733123456": "PAYEE_NOT_ALLOWED_TO_RECEIVE",
    "46733123457": "NOT_ALLOWED",
    "46733123458": "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "46733123459": "INVALID_CALLBACK_URL_HOST",
    "46733123460": "INVALID_CURRENCY",
    "46733123461": "INTERNAL_PROCESSING_ERROR",
    "46733123462": "SERVICE_UNAVAILABLE",
    "46733123463": "COULD_NOT_PERFORM_TRANSACTION",
}

TRANSFER_FAILURES = {
    "46733123450": "INTERNAL_PROCESSING_ERROR",
    "46733123451": "APPROVAL_REJECTED",
    "46733123452": "EXPIRED",
    "46733123455": "NOT_ENOUGH_FUNDS",
    "46733123456": "PAYER_LIMIT_REACHED",
    "46733123457": "PAYEE_NOT_FOUND",
    "46733123458": "NOT_ALLOWED",
    "46733123459": "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "46733123460": "INVALID_CALLBACK_URL_HOST",
    "46733123461": "INVALID_CURRENCY",
    "46733123462": "INTERNAL_PROCESSING_ERROR",
    "46733123463": "SERVICE_UNAVAILABLE",
}


@pytest.mark.parametrize(("msisdn", "reason"), sorted(COLLECTION_FAILURES.items()))
def test_sandbox_failure_numbers_fail_request_to_pay(mtn_client, msisdn, reason):
    ref, result = pay(mtn_client, msisdn)

    status = mtn_client.request_to_pay_status(reference_id=ref)

    assert result.already_existed is False
    assert (status.status, status.reason_code) == ("FAILED", reason)


@pytest.mark.parametrize(("msisdn", "reason"), sorted(TRANSFER_FAILURES.items()))
def test_sandbox_failure_numbers_fail_transfers(mtn_client, msisdn, reason):
    ref, _ = payout(mtn_client, msisdn)

    status = mtn_client.transfer_status(reference_id=ref)

    assert (status.status, status.reason_code) == ("FAILED", reason)


def test_453_stays_pending(mtn_client):
    ref, _ = pay(mtn_client, "46733123453")
    time.sleep(0.4)

    assert mtn_client.request_to_pay_status(reference_id=ref).status == "PENDING"


def test_454_is_pending_then_successful(mtn_client):
    ref, _ = pay(mtn_client, "46733123454")

    first = mtn_client.request_to_pay_status(reference_id=ref)
    time.sleep(0.4)  # the fixture's delay is 0.3 s
    later = mtn_client.request_to_pay_status(reference_id=ref)

    assert first.status == "PENDING"
    assert first.financial_transaction_id is None
    assert later.status == "SUCCESSFUL"
    assert later.financial_transaction_id


def test_transfer_flow(mtn_client, sandbox):
    ref, result = payout(mtn_client)

    status = mtn_client.transfer_status(reference_id=ref)

    assert result.already_existed is False
    assert status.status == "SUCCESSFUL"
    assert status.party_id == "256772123456"
    assert "payee" in status.raw
    assert sandbox.state.transaction(ref)["product"] == "disbursement"
    with pytest.raises(MtnNotFoundError):
        mtn_client.request_to_pay_status(reference_id=ref)  # another product's reference


def test_unknown_reference_is_not_found(mtn_client):
    with pytest.raises(MtnNotFoundError):
        mtn_client.request_to_pay_status(reference_id=uuid.uuid4())


def test_lost_response_then_409_is_already_existed(mtn_client, sandbox):
    sandbox.set_faults(lose_next_posts=1)

    ref, result = pay(mtn_client)

    assert result == SubmitResult(already_existed=True)
    tx = sandbox.state.transaction(ref)
    assert tx["post_count"] == 1
    assert tx["conflict_count"] == 1
    assert mtn_client.request_to_pay_status(reference_id=ref).status == "SUCCESSFUL"


def test_lost_response_with_retry_false_raises_and_worker_retry_gets_409(mtn_client, sandbox):
    sandbox.set_faults(lose_next_posts=1)
    ref = uuid.uuid4()

    with pytest.raises(MtnRetryableError) as info:
        pay(mtn_client, reference_id=ref, retry=False)
    _, again = pay(mtn_client, reference_id=ref, retry=False)

    assert info.value.code == "NETWORK_ERROR"
    assert again.already_existed is True
    assert sandbox.state.post_count(ref) == 1


def test_lost_response_by_sleeping_past_the_read_timeout(sandbox):
    sandbox.set_faults(lose_next_posts=1, lost_response_mode="sleep", timeout_seconds=0.6)
    mtn_client = client_for(sandbox, read_timeout=0.3)

    ref, result = pay(mtn_client)

    assert result.already_existed is True
    assert sandbox.state.post_count(ref) == 1


def test_503s_are_retried_with_the_same_reference_and_reach_mtn_once(mtn_client, sandbox):
    sandbox.set_faults(fail_next_posts=2)

    ref, result = pay(mtn_client)

    assert result.already_existed is False
    posts = [r for r in sandbox.state.requests if r["path"] == "/collection/v1_0/requesttopay"]
    assert [r["status"] for r in posts] == [503, 503, 202]
    assert {r["reference_id"] for r in posts} == {str(ref)}
    assert sandbox.state.post_count(ref) == 1


def test_timeout_without_creation_is_retried(sandbox):
    sandbox.set_faults(timeout_next=1, timeout_seconds=0.6)
    mtn_client = client_for(sandbox, read_timeout=0.3)

    ref, result = pay(mtn_client)

    assert result.already_existed is False
    assert sandbox.state.post_count(ref) == 1


def test_down_switch_answers_503_everywhere(mtn_client, sandbox):
    sandbox.set_faults(down=True)

    with pytest.raises(MtnRetryableError) as info:
        pay(mtn_client)

    assert info.value.code == "SERVICE_UNAVAILABLE"
    assert sandbox.state.all_transactions() == []


def test_rate_limit_429_honours_retry_after(sandbox, sleeps):
    from mtn.retry import RetryPolicy

    sandbox.set_faults(rate_limit_next=1, retry_after_seconds=1)
    config = sandbox_client_config(sandbox.base_url)
    policy = RetryPolicy(max_tries=3, max_seconds=5, sleep=sleeps)
    mtn_client = MtnClient(config, retry_policy=policy)

    _, result = pay(mtn_client)

    assert result.already_existed is False
    assert len(sleeps.waits) == 1
    assert sleeps.waits[0] >= 1.0


def test_rate_limit_with_retry_false_carries_retry_after(mtn_client, sandbox):
    sandbox.set_faults(rate_limit_next=1, retry_after_seconds=4)

    with pytest.raises(MtnRateLimitedError) as info:
        mtn_client.account_balance(retry=False)

    assert info.value.retry_after == 4.0


def test_random_faults_never_double_create(sandbox):
    sandbox.set_faults(seed=7, post_error_rate=0.3, lost_response_rate=0.3)
    config = sandbox_client_config(sandbox.base_url, max_tries=10, max_seconds=10)
    mtn_client = MtnClient(config, retry_policy=fast_policy(config))

    refs = [pay(mtn_client)[0] for _ in range(15)]

    assert all(sandbox.state.post_count(ref) == 1 for ref in refs)
    assert len(sandbox.state.all_transactions()) == 15


# --- tokens and credentials ------------------------------------------------------------------


def test_token_minted_once_for_many_calls(mtn_client, sandbox):
    for _ in range(5):
        pay(mtn_client)
    mtn_client.account_balance()

    assert sandbox.state.tokens_issued == {"collection": 1, "disbursement": 0}


def test_concurrent_callers_mint_one_token(mtn_client, sandbox):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: mtn_client.account_balance(), range(16)))

    assert sandbox.state.tokens_issued["collection"] == 1


def test_expired_token_is_refreshed_once(mtn_client, sandbox):
    pay(mtn_client)
    sandbox.expire_tokens()

    ref, result = pay(mtn_client, retry=False)

    assert result.already_existed is False
    assert sandbox.state.tokens_issued["collection"] == 2
    assert sandbox.state.post_count(ref) == 1


def test_tokens_dying_early_switch(mtn_client, sandbox):
    sandbox.set_faults(token_lifetime_seconds=0.2)
    pay(mtn_client)
    time.sleep(0.3)

    pay(mtn_client)

    assert sandbox.state.tokens_issued["collection"] == 2


def test_wrong_api_key_is_login_failed(sandbox):
    config = sandbox_client_config(sandbox.base_url)
    config = replace(config, collection=replace(config.collection, api_key="wrong"))
    mtn_client = MtnClient(config, retry_policy=fast_policy(config))

    with pytest.raises(MtnAuthenticationError) as info:
        pay(mtn_client)

    assert info.value.code == "login_failed"
    assert info.value.status_code == 500
    assert sandbox.state.all_transactions() == []


def test_wrong_subscription_key_is_apim_401(sandbox):
    config = sandbox_client_config(sandbox.base_url)
    config = replace(config, collection=replace(config.collection, subscription_key="nope"))
    mtn_client = MtnClient(config, retry_policy=fast_policy(config))

    with pytest.raises(MtnAuthenticationError) as info:
        pay(mtn_client)

    assert info.value.status_code == 401
    assert info.value.body["statusCode"] == 401


def test_collection_key_is_refused_on_disbursement(sandbox):
    config = sandbox_client_config(sandbox.base_url)
    config = replace(config, disbursement=config.collection)
    mtn_client = MtnClient(config, retry_policy=fast_policy(config))

    with pytest.raises(MtnAuthenticationError) as info:
        payout(mtn_client)

    assert info.value.status_code == 401
    assert "subscription key" in info.value.message


def test_wrong_target_environment_is_a_configuration_error(sandbox):
    mtn_client = client_for(sandbox, target_environment="mtnuganda")

    with pytest.raises(MtnConfigurationError) as info:
        pay(mtn_client)

    assert info.value.code == "NOT_ALLOWED_TARGET_ENVIRONMENT"


def test_sandbox_accepts_only_eur(mtn_client, sandbox):
    with pytest.raises(MtnConfigurationError) as info:
        pay(mtn_client, currency="UGX", amount="1000")

    assert info.value.code == "INVALID_CURRENCY"
    assert sandbox.state.all_transactions() == []


def test_market_environment_accepts_its_currency():
    handle = start_sandbox(SandboxConfig(target_environment="mtnuganda"))
    try:
        mtn_client = client_for(handle, target_environment="mtnuganda")
        ref, result = pay(mtn_client, currency="UGX", amount="1000")
        with pytest.raises(MtnConfigurationError):
            pay(mtn_client, currency="EUR")
    finally:
        handle.stop()

    assert result.already_existed is False


def test_callback_host_mismatch_creates_nothing():
    handle = start_sandbox(SandboxConfig(provider_callback_host="pay.example.com"))
    try:
        mtn_client = client_for(handle)
        ref = uuid.uuid4()
        with pytest.raises(MtnConfigurationError) as info:
            pay(mtn_client, reference_id=ref, callback_url="http://evil.example.org/cb")
        assert handle.state.transaction(ref) is None
        _, result = pay(mtn_client, reference_id=ref, callback_url="https://pay.example.com/cb/x")
    finally:
        handle.stop()

    assert info.value.code == "INVALID_CALLBACK_URL_HOST"
    assert result.already_existed is False


def test_account_holder_and_balance(mtn_client):
    assert mtn_client.account_holder_active(msisdn="256772123456") is True
    assert mtn_client.account_holder_active(msisdn="46733123451") is False
    assert mtn_client.account_holder_active(msisdn="46733123450") is False  # unknown: 404
    with pytest.raises(MtnConfigurationError):
        mtn_client.account_holder_active(msisdn="46733123452")
    balance = mtn_client.account_balance(product="disbursement")
    assert balance.currency == "EUR"
    assert balance.available > 0


# --- raw wire checks (what other MTN clients would see) --------------------------------------


def wire_token(base_url: str, product: str = "collection") -> str:
    creds = MtnCredentials(
        settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
        settings.MTN_COLLECTION_API_USER,
        settings.MTN_COLLECTION_API_KEY,
    )
    response = requests.post(
        f"{base_url}/{product}/token/",
        auth=(creds.api_user, creds.api_key),
        headers={"Ocp-Apim-Subscription-Key": creds.subscription_key},
        timeout=2,
    )
    body = response.json()
    assert body["token_type"] == "access_token"
    assert body["expires_in"] == 3600
    return body["access_token"]


def wire_headers(token: str, ref: str | None = None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Target-Environment": "sandbox",
        "Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
    }
    if ref:
        headers["X-Reference-Id"] = ref
    return headers


RTP_BODY = {
    "amount": "10",
    "currency": "EUR",
    "externalId": "x",
    "payer": {"partyIdType": "MSISDN", "partyId": "256772123456"},
}


def test_wire_202_empty_then_409_body(sandbox):
    token = wire_token(sandbox.base_url)
    ref = str(uuid.uuid4())
    url = f"{sandbox.base_url}/collection/v1_0/requesttopay"

    first = requests.post(url, json=RTP_BODY, headers=wire_headers(token, ref), timeout=2)
    second = requests.post(url, json=RTP_BODY, headers=wire_headers(token, ref), timeout=2)

    assert (first.status_code, first.content) == (202, b"")
    assert second.status_code == 409
    assert second.json() == {
        "code": "RESOURCE_ALREADY_EXIST",
        "message": "Duplicated reference id. Creation of resource failed.",
    }


@pytest.mark.parametrize(
    ("ref", "extra_headers", "body", "status"),
    [
        (str(uuid.uuid1()), {}, RTP_BODY, 400),  # not a v4 UUID
        ("not-a-uuid", {}, RTP_BODY, 400),
        (None, {"X-Callback-Url": ""}, RTP_BODY, 400),
        (None, {}, {**RTP_BODY, "amount": 10}, 400),  # numbers are not strings
        (None, {}, {**RTP_BODY, "payerMessage": "Tom's"}, 400),
        (None, {}, {**RTP_BODY, "payeeNote": "x" * 161}, 400),
    ],
)
def test_wire_validation_errors_create_nothing(sandbox, ref, extra_headers, body, status):
    token = wire_token(sandbox.base_url)
    headers = {**wire_headers(token, ref or str(uuid.uuid4())), **extra_headers}

    response = requests.post(
        f"{sandbox.base_url}/collection/v1_0/requesttopay", json=body, headers=headers, timeout=2
    )

    assert response.status_code == status
    assert sandbox.state.all_transactions() == []


def test_wire_missing_bearer_is_401_without_status_code(sandbox):
    headers = wire_headers("unknown-token", str(uuid.uuid4()))

    response = requests.post(
        f"{sandbox.base_url}/collection/v1_0/requesttopay",
        json=RTP_BODY,
        headers=headers,
        timeout=2,
    )

    assert response.status_code == 401
    assert "statusCode" not in response.json()


def test_wire_provisioning_flow(sandbox):
    key = settings.MTN_COLLECTION_SUBSCRIPTION_KEY
    user = str(uuid.uuid4())
    base = f"{sandbox.base_url}/v1_0/apiuser"
    headers = {"X-Reference-Id": user, "Ocp-Apim-Subscription-Key": key}

    created = requests.post(
        base, json={"providerCallbackHost": "pay.example.com"}, headers=headers, timeout=2
    )
    duplicate = requests.post(
        base, json={"providerCallbackHost": "pay.example.com"}, headers=headers, timeout=2
    )
    api_key = requests.post(
        f"{base}/{user}/apikey", headers={"Ocp-Apim-Subscription-Key": key}, timeout=2
    )
    info = requests.get(f"{base}/{user}", headers={"Ocp-Apim-Subscription-Key": key}, timeout=2)

    assert created.status_code == 201
    assert duplicate.status_code == 409
    assert api_key.status_code == 201
    assert len(api_key.json()["apiKey"]) == 32
    assert info.json() == {
        "providerCallbackHost": "pay.example.com",
        "targetEnvironment": "sandbox",
    }

    config = sandbox_client_config(sandbox.base_url)
    config = replace(config, collection=MtnCredentials(key, user, api_key.json()["apiKey"]))
    mtn_client = MtnClient(config, retry_policy=fast_policy(config))
    _, result = pay(mtn_client, callback_url="https://pay.example.com/cb")
    assert result.already_existed is False
    with pytest.raises(MtnConfigurationError):
        pay(mtn_client, callback_url="https://other.example.com/cb")


def test_control_api_over_http(sandbox, mtn_client):
    base = f"{sandbox.base_url}/_simulator"

    faults = requests.post(f"{base}/faults", json={"fail_next_posts": 1}, timeout=2)
    bad = requests.post(f"{base}/faults", json={"no_such_fault": 1}, timeout=2)
    bad_rate = requests.post(f"{base}/faults", json={"post_error_rate": 2}, timeout=2)
    ref, _ = pay(mtn_client)
    listed = requests.get(f"{base}/transactions", timeout=2).json()["results"]
    one = requests.get(f"{base}/transactions/{ref}", timeout=2).json()
    reset = requests.post(f"{base}/reset", timeout=2)

    assert faults.json()["fail_next_posts"] == 1
    assert bad.status_code == 400
    assert bad_rate.status_code == 400
    assert [t["reference_id"] for t in listed] == [str(ref)]
    assert one["post_count"] == 1
    assert reset.status_code == 200
    assert sandbox.state.all_transactions() == []


# --- callbacks --------------------------------------------------------------------------------


def signature_ok(callback) -> bool:
    expected = hmac.new(
        settings.MTN_WEBHOOK_SECRET.encode(), callback.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(callback.headers.get("X-Signature-256", ""), f"sha256={expected}")


def test_callback_is_post_with_status_json_and_valid_signature(mtn_client, callback_receiver):
    url = f"{callback_receiver.base_url}/api/v1/webhooks/mtn/tok123"

    ref, _ = pay(mtn_client, "46733123451", callback_url=url)
    [callback] = callback_receiver.wait_for(1)

    assert callback.method == "POST"  # MTN's callback page; PUT is v2 (--callback-method)
    assert callback.path == "/api/v1/webhooks/mtn/tok123"
    assert signature_ok(callback)
    body = callback.json()
    assert str(ref) not in callback.body.decode()
    assert body["status"] == "FAILED"
    assert body["reason"] == "APPROVAL_REJECTED"
    assert body["externalId"] == "pay_1"
    assert body == mtn_client.request_to_pay_status(reference_id=ref).raw


def test_callback_for_delayed_success_arrives_after_the_delay(mtn_client, callback_receiver):
    ref, _ = pay(mtn_client, "46733123454", callback_url=f"{callback_receiver.base_url}/cb")

    [callback] = callback_receiver.wait_for(1)

    assert callback.json()["status"] == "SUCCESSFUL"
    assert callback.json()["financialTransactionId"]


def test_no_callback_for_pending_forever(mtn_client, callback_receiver, sandbox):
    pay(mtn_client, "46733123453", callback_url=f"{callback_receiver.base_url}/cb")
    time.sleep(0.3)

    assert callback_receiver.received == []


def test_callback_post_reason_object_and_signed_door(callback_receiver):
    signed = f"{callback_receiver.base_url}/api/v1/webhooks/mtn"
    handle = start_sandbox(
        SandboxConfig(callback_method="POST", reason_as_object=True, signed_callback_url=signed)
    )
    try:
        mtn_client = client_for(handle)
        ref, _ = payout(mtn_client, "46733123457")
        [callback] = callback_receiver.wait_for(1)
        status = mtn_client.transfer_status(reference_id=ref)
    finally:
        handle.stop()

    assert callback.method == "POST"
    assert callback.path == "/api/v1/webhooks/mtn"
    assert signature_ok(callback)
    assert callback.json()["reason"] == {
        "code": "PAYEE_NOT_FOUND",
        "message": "The payee could not be found.",
    }
    assert status.reason_code == "PAYEE_NOT_FOUND"
    assert status.reason_message == "The payee could not be found."


def test_duplicate_and_out_of_order_callbacks(mtn_client, sandbox, callback_receiver):
    sandbox.set_faults(duplicate_callback_rate=1.0, out_of_order_rate=1.0)

    pay(mtn_client, callback_url=f"{callback_receiver.base_url}/cb")
    callbacks = callback_receiver.wait_for(3)

    assert [c.json()["status"] for c in callbacks] == ["SUCCESSFUL", "SUCCESSFUL", "PENDING"]
    assert all(signature_ok(c) for c in callbacks)


def test_lost_callbacks_are_logged_not_sent(mtn_client, sandbox, callback_receiver):
    sandbox.set_faults(lost_callback_rate=1.0)

    ref, _ = pay(mtn_client, callback_url=f"{callback_receiver.base_url}/cb")
    time.sleep(0.3)

    assert callback_receiver.received == []
    assert [c["outcome"] for c in sandbox.state.callback_log()] == ["lost"]


def test_late_callback_waits_for_the_delay(mtn_client, sandbox, callback_receiver):
    sandbox.set_faults(callback_delay_seconds=0.4)
    started = time.monotonic()

    pay(mtn_client, callback_url=f"{callback_receiver.base_url}/cb")
    callback_receiver.wait_for(1)

    assert time.monotonic() - started >= 0.4


def test_callback_fields_parse_like_a_status(mtn_client, callback_receiver):
    from mtn.client import parse_transaction_status

    pay(mtn_client, "46733123450", callback_url=f"{callback_receiver.base_url}/cb")
    [callback] = callback_receiver.wait_for(1)

    status = parse_transaction_status(json.loads(callback.body))

    assert (status.status, status.reason_code) == ("FAILED", "INTERNAL_PROCESSING_ERROR")
    assert status.amount == Decimal("12.5")


def test_rejected_error_is_a_rejection(mtn_client):
    with pytest.raises(MtnRejectedError):
        pay(mtn_client, currency="XXX")
