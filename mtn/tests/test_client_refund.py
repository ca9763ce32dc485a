"""MtnClient.refund / refund_status against MTN-shaped payloads mocked with ``responses``."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import responses

from mtn.client import SubmitResult
from mtn.errors import MtnConfigurationError, MtnNotFoundError, MtnRetryableError

from .conftest import UNIT_BASE_URL

REFUND_URL = f"{UNIT_BASE_URL}/disbursement/v1_0/refund"
DISBURSEMENT_TOKEN_URL = f"{UNIT_BASE_URL}/disbursement/token/"
COLLECTION_TOKEN_URL = f"{UNIT_BASE_URL}/collection/token/"


def add_disbursement_token() -> None:
    responses.add(
        responses.POST,
        DISBURSEMENT_TOKEN_URL,
        json={"access_token": "dis-tok", "token_type": "access_token", "expires_in": 3600},
    )


def refund(client, ref: uuid.UUID, original: uuid.UUID, **overrides) -> SubmitResult:
    values = {
        "reference_id": ref,
        "amount": "400",
        "currency": "EUR",
        "external_id": "ref_1",
        "payer_message": "Refund order 42",
        "payee_note": "damaged",
        "reference_id_to_refund": original,
        "callback_url": "https://pay.example.com/api/v1/webhooks/mtn/x",
        "retry": True,
    }
    values.update(overrides)
    return client.refund(**values)


def posts() -> list:
    return [c for c in responses.calls if c.request.url == REFUND_URL]


@responses.activate
def test_refund_posts_disbursement_refund_with_reference_to_refund(unit_client):
    add_disbursement_token()
    responses.add(responses.POST, REFUND_URL, status=202)
    ref, original = uuid.uuid4(), uuid.uuid4()

    result = refund(unit_client, ref, original)

    assert result == SubmitResult(already_existed=False)
    request = posts()[0].request
    assert request.headers["X-Reference-Id"] == str(ref)
    assert request.headers["Ocp-Apim-Subscription-Key"] == "dis-sub-key"
    assert request.headers["Authorization"] == "Bearer dis-tok"
    assert request.headers["X-Target-Environment"] == "sandbox"
    assert request.headers["X-Callback-Url"] == "https://pay.example.com/api/v1/webhooks/mtn/x"
    assert json.loads(request.body) == {
        "amount": "400",
        "currency": "EUR",
        "externalId": "ref_1",
        "referenceIdToRefund": str(original),
        "payerMessage": "Refund order 42",
        "payeeNote": "damaged",
    }
    # A refund is a disbursement: no collection token was ever asked for.
    assert not [c for c in responses.calls if c.request.url == COLLECTION_TOKEN_URL]


@responses.activate
def test_refund_omits_empty_texts_and_callback_and_canonicalises_reference(unit_client):
    add_disbursement_token()
    responses.add(responses.POST, REFUND_URL, status=202)
    original = uuid.uuid4()

    refund(
        unit_client,
        uuid.uuid4(),
        str(original).upper(),
        payer_message=None,
        payee_note="&&",
        callback_url=None,
    )

    request = posts()[0].request
    body = json.loads(request.body)
    assert body["referenceIdToRefund"] == str(original)
    assert "payerMessage" not in body
    assert "payeeNote" not in body
    assert "X-Callback-Url" not in request.headers


@responses.activate
def test_refund_409_for_our_reference_is_already_existed(unit_client):
    add_disbursement_token()
    responses.add(
        responses.POST,
        REFUND_URL,
        status=409,
        json={
            "message": "Duplicated reference id. Creation of resource failed.",
            "code": "RESOURCE_ALREADY_EXIST",
        },
    )

    assert refund(unit_client, uuid.uuid4(), uuid.uuid4()) == SubmitResult(already_existed=True)
    assert len(posts()) == 1


@responses.activate
def test_refund_retries_outages_with_the_same_reference(unit_client, sleeps):
    add_disbursement_token()
    responses.add(responses.POST, REFUND_URL, status=503, json={"code": "SERVICE_UNAVAILABLE"})
    responses.add(responses.POST, REFUND_URL, status=202)
    ref = uuid.uuid4()

    assert refund(unit_client, ref, uuid.uuid4()).already_existed is False

    assert [c.request.headers["X-Reference-Id"] for c in posts()] == [str(ref)] * 2
    assert len({c.request.body for c in posts()}) == 1


@responses.activate
def test_refund_retry_false_makes_one_attempt(unit_client, sleeps):
    add_disbursement_token()
    responses.add(responses.POST, REFUND_URL, status=503, json={"code": "SERVICE_UNAVAILABLE"})

    with pytest.raises(MtnRetryableError) as info:
        refund(unit_client, uuid.uuid4(), uuid.uuid4(), retry=False)

    assert info.value.retryable is True
    assert len(posts()) == 1
    assert sleeps.waits == []


@responses.activate
def test_refund_configuration_error_is_not_retried(unit_client, sleeps):
    add_disbursement_token()
    responses.add(
        responses.POST,
        REFUND_URL,
        status=500,
        json={"code": "INVALID_CURRENCY", "message": "Currency not supported."},
    )

    with pytest.raises(MtnConfigurationError):
        refund(unit_client, uuid.uuid4(), uuid.uuid4())

    assert len(posts()) == 1


@responses.activate
def test_refund_status_reads_refund_path_with_payee(unit_client):
    add_disbursement_token()
    ref = uuid.uuid4()
    responses.add(
        responses.GET,
        f"{REFUND_URL}/{ref}",
        json={
            "amount": "400",
            "currency": "EUR",
            "financialTransactionId": "998877",
            "externalId": "ref_1",
            "payee": {"partyIdType": "MSISDN", "partyId": "256772123456"},
            "status": "SUCCESSFUL",
        },
    )

    status = unit_client.refund_status(reference_id=ref, retry=False)

    assert status.status == "SUCCESSFUL"
    assert status.is_final
    assert status.amount == Decimal("400")
    assert status.party_id == "256772123456"
    assert status.external_id == "ref_1"
    assert responses.calls[-1].request.headers["Ocp-Apim-Subscription-Key"] == "dis-sub-key"


@responses.activate
def test_refund_status_unknown_reference_is_not_found(unit_client):
    add_disbursement_token()
    ref = uuid.uuid4()
    responses.add(
        responses.GET,
        f"{REFUND_URL}/{ref}",
        status=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )

    with pytest.raises(MtnNotFoundError):
        unit_client.refund_status(reference_id=ref)
