"""Refunds end to end: the real MtnClient against the simulator's disbursement refund."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
import requests
from django.conf import settings

from mtn.client import MtnClient, MtnCredentials, SubmitResult
from mtn.errors import MtnAuthenticationError, MtnNotFoundError, MtnRejectedError
from mtn.sandbox import start_sandbox

from .conftest import CallbackReceiver, fast_policy, sandbox_client_config

pytestmark = pytest.mark.e2e


def collect(client: MtnClient, msisdn: str = "256772123456", amount: str = "100") -> uuid.UUID:
    ref = uuid.uuid4()
    client.request_to_pay(
        reference_id=ref,
        amount=amount,
        currency="EUR",
        external_id="pay_1",
        payer_msisdn=msisdn,
    )
    return ref


def refund(
    client: MtnClient, original: uuid.UUID | str, amount: str = "40", **overrides
) -> tuple[uuid.UUID, SubmitResult]:
    ref = overrides.pop("reference_id", None) or uuid.uuid4()
    values = {
        "reference_id": ref,
        "amount": amount,
        "currency": "EUR",
        "external_id": "rf_1",
        "payer_message": "Refund",
        "payee_note": "damaged",
        "reference_id_to_refund": original,
        "callback_url": None,
        "retry": True,
    }
    values.update(overrides)
    return ref, client.refund(**values)


def test_refund_of_a_successful_collection_pays_the_payer_back(mtn_client, sandbox):
    original = collect(mtn_client, "256772123456")

    ref, result = refund(mtn_client, original, "40.50")
    status = mtn_client.refund_status(reference_id=ref)

    assert result == SubmitResult(already_existed=False)
    assert status.status == "SUCCESSFUL"
    assert status.financial_transaction_id
    assert status.amount == Decimal("40.50")
    assert status.raw["payee"] == {"partyIdType": "MSISDN", "partyId": "256772123456"}
    assert status.external_id == "rf_1"
    tx = sandbox.state.transaction(ref)
    assert (tx["kind"], tx["product"]) == ("refund", "disbursement")
    assert tx["reference_id_to_refund"] == str(original)
    assert tx["api_user"] == settings.MTN_DISBURSEMENT_API_USER
    assert sandbox.state.post_count(ref) == 1
    assert [r["reference_id"] for r in sandbox.state.refunds_of(original)] == [str(ref)]


def test_refund_sent_twice_reaches_mtn_once_and_counts_the_conflict(mtn_client, sandbox):
    original = collect(mtn_client)
    ref, first = refund(mtn_client, original)

    _, second = refund(mtn_client, original, reference_id=ref)

    assert (first.already_existed, second.already_existed) == (False, True)
    assert sandbox.state.post_count(ref) == 1
    assert sandbox.state.conflict_count(ref) == 1
    assert len(sandbox.state.refunds_of(original)) == 1


def test_lost_refund_answer_is_retried_with_the_same_reference(mtn_client, sandbox):
    original = collect(mtn_client)
    sandbox.set_faults(lose_next_posts=1)

    ref, result = refund(mtn_client, original)

    assert result.already_existed is True
    assert sandbox.state.post_count(ref) == 1
    assert sandbox.state.conflict_count(ref) == 1


def test_refund_of_an_unknown_transaction_is_accepted_then_fails_not_found(mtn_client, sandbox):
    # MTN accepts every well-formed refund (202) and fails the ones it cannot make; it has
    # no synchronous "no such transaction" answer on this call.
    unknown = uuid.uuid4()

    ref, result = refund(mtn_client, unknown)
    status = mtn_client.refund_status(reference_id=ref)

    assert result.already_existed is False
    assert (status.status, status.reason_code) == ("FAILED", "TRANSACTION_NOT_FOUND")
    assert status.financial_transaction_id is None
    assert "financialTransactionId" not in status.raw
    assert "payee" not in status.raw  # nobody to pay back
    assert sandbox.state.post_count(ref) == 1


def test_refund_of_a_transfer_fails_not_found(mtn_client, sandbox):
    transfer_ref = uuid.uuid4()
    mtn_client.transfer(
        reference_id=transfer_ref,
        amount="10",
        currency="EUR",
        external_id="po",
        payee_msisdn="256772123456",
    )

    ref, _ = refund(mtn_client, transfer_ref, "5")

    status = mtn_client.refund_status(reference_id=ref)
    assert (status.status, status.reason_code) == ("FAILED", "TRANSACTION_NOT_FOUND")
    assert mtn_client.transfer_status(reference_id=transfer_ref).status == "SUCCESSFUL"


@pytest.mark.parametrize("payer", ["46733123450", "46733123451", "46733123453"])
def test_refund_of_a_collection_that_did_not_succeed_fails(mtn_client, sandbox, payer):
    original = collect(mtn_client, payer)

    ref, result = refund(mtn_client, original)
    status = mtn_client.refund_status(reference_id=ref)

    assert result.already_existed is False
    assert (status.status, status.reason_code) == ("FAILED", "INTERNAL_PROCESSING_ERROR")
    assert "financialTransactionId" not in status.raw
    assert status.raw["payee"]["partyId"] == payer


def test_partial_refunds_may_not_exceed_the_collection(mtn_client, sandbox):
    original = collect(mtn_client, amount="100")
    refund(mtn_client, original, "60")
    refund(mtn_client, original, "40")

    over, _ = refund(mtn_client, original, "0.01")
    status = mtn_client.refund_status(reference_id=over)

    assert (status.status, status.reason_code) == ("FAILED", "INTERNAL_PROCESSING_ERROR")
    refunds = sandbox.state.refunds_of(original)
    assert [(r["amount"], r["status"]) for r in refunds] == [
        ("60", "SUCCESSFUL"),
        ("40", "SUCCESSFUL"),
        ("0.01", "FAILED"),
    ]


def test_refund_in_another_currency_than_the_collection_fails():
    # A market of unknown currency takes any, so only the refund rule can refuse it.
    handle = start_sandbox(target_environment="mtnatlantis")
    try:
        config = sandbox_client_config(handle.base_url, target_environment="mtnatlantis")
        client = MtnClient(config, retry_policy=fast_policy(config))
        original = collect(client, amount="100")

        ref, _ = refund(client, original, "10", currency="USD")

        status = client.refund_status(reference_id=ref)
        assert (status.status, status.reason_code) == ("FAILED", "INTERNAL_PROCESSING_ERROR")
    finally:
        handle.stop()


def test_a_failed_refund_leaves_its_amount_refundable(mtn_client, sandbox):
    original = collect(mtn_client, "46733123470", amount="100")  # its refunds fail
    failed_ref, _ = refund(mtn_client, original, "100")
    failed = mtn_client.refund_status(reference_id=failed_ref)
    again_ref, again = refund(mtn_client, original, "100")

    assert (failed.status, failed.reason_code) == ("FAILED", "INTERNAL_PROCESSING_ERROR")
    assert again.already_existed is False
    assert sandbox.state.post_count(again_ref) == 1


def test_refund_in_another_currency_than_the_market_is_invalid_currency(mtn_client, sandbox):
    original = collect(mtn_client)
    ref = uuid.uuid4()

    with pytest.raises(MtnRejectedError) as info:
        refund(mtn_client, original, "10", currency="UGX", reference_id=ref)

    assert info.value.code == "INVALID_CURRENCY"
    assert sandbox.state.transaction(ref) is None


# 4673312347N refunds like 4673312345N transfers (mtn/sandbox/README.md).
REFUND_FAILURES = {
    "46733123470": "INTERNAL_PROCESSING_ERROR",
    "46733123471": "APPROVAL_REJECTED",
    "46733123472": "EXPIRED",
    "46733123475": "NOT_ENOUGH_FUNDS",
    "46733123476": "PAYER_LIMIT_REACHED",
    "46733123477": "PAYEE_NOT_FOUND",
    "46733123478": "NOT_ALLOWED",
    "46733123479": "NOT_ALLOWED_TARGET_ENVIRONMENT",
    "46733123480": "INVALID_CALLBACK_URL_HOST",
    "46733123481": "INVALID_CURRENCY",
    "46733123482": "INTERNAL_PROCESSING_ERROR",
    "46733123483": "SERVICE_UNAVAILABLE",
}


@pytest.mark.parametrize(("payer", "reason"), sorted(REFUND_FAILURES.items()))
def test_refund_outcome_follows_the_original_payers_number(mtn_client, payer, reason):
    original = collect(mtn_client, payer)
    assert mtn_client.request_to_pay_status(reference_id=original).status == "SUCCESSFUL"

    ref, _ = refund(mtn_client, original)
    status = mtn_client.refund_status(reference_id=ref)

    assert (status.status, status.reason_code) == ("FAILED", reason)


def test_refund_for_473_stays_pending_and_sends_no_callback(
    mtn_client, sandbox, callback_receiver: CallbackReceiver
):
    original = collect(mtn_client, "46733123473")

    ref, _ = refund(mtn_client, original, callback_url=f"{callback_receiver.base_url}/cb/1")

    assert mtn_client.refund_status(reference_id=ref).status == "PENDING"
    assert sandbox.state.callback_log() == []


def test_refund_for_474_is_pending_then_successful_with_a_callback(
    mtn_client, callback_receiver: CallbackReceiver
):
    original = collect(mtn_client, "46733123474")
    url = f"{callback_receiver.base_url}/api/v1/webhooks/mtn/refund-token"

    ref, _ = refund(mtn_client, original, callback_url=url)
    first = mtn_client.refund_status(reference_id=ref)
    [callback] = callback_receiver.wait_for(1)

    assert first.status == "PENDING"
    assert callback.method == "POST"
    assert callback.path == "/api/v1/webhooks/mtn/refund-token"
    body = callback.json()
    assert body["status"] == "SUCCESSFUL"
    assert body["payee"]["partyId"] == "46733123474"
    assert str(ref) not in callback.body.decode()
    assert body == mtn_client.refund_status(reference_id=ref).raw


def test_refund_references_are_not_transfers_and_back(mtn_client):
    original = collect(mtn_client)
    ref, _ = refund(mtn_client, original)

    with pytest.raises(MtnNotFoundError):
        mtn_client.transfer_status(reference_id=ref)
    with pytest.raises(MtnNotFoundError):
        mtn_client.refund_status(reference_id=original)


def test_refund_needs_the_disbursement_subscription_key(sandbox, mtn_client):
    original = collect(mtn_client)
    token = requests.post(
        f"{sandbox.base_url}/collection/token/",
        auth=(settings.MTN_COLLECTION_API_USER, settings.MTN_COLLECTION_API_KEY),
        headers={"Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY},
        timeout=2,
    ).json()["access_token"]
    ref = str(uuid.uuid4())

    response = requests.post(
        f"{sandbox.base_url}/disbursement/v1_0/refund",
        json={
            "amount": "1",
            "currency": "EUR",
            "externalId": "x",
            "referenceIdToRefund": str(original),
        },
        headers={
            "Authorization": f"Bearer {token}",
            "X-Reference-Id": ref,
            "X-Target-Environment": "sandbox",
            "Ocp-Apim-Subscription-Key": settings.MTN_COLLECTION_SUBSCRIPTION_KEY,
        },
        timeout=2,
    )

    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert sandbox.state.transaction(ref) is None


def test_refund_control_api_lists_a_collections_refunds(mtn_client, sandbox):
    original = collect(mtn_client)
    ref, _ = refund(mtn_client, original)

    listed = requests.get(
        f"{sandbox.base_url}/_simulator/transactions/{original}/refunds", timeout=2
    ).json()["results"]

    assert [(r["reference_id"], r["post_count"]) for r in listed] == [(str(ref), 1)]


def test_refund_error_for_wrong_key_is_authentication_error(sandbox):
    config = sandbox_client_config(sandbox.base_url)
    config = replace(
        config,
        disbursement=MtnCredentials(
            "wrong-key", config.disbursement.api_user, config.disbursement.api_key
        ),
    )
    client = MtnClient(config, retry_policy=fast_policy(config))

    with pytest.raises(MtnAuthenticationError):
        refund(client, uuid.uuid4())
