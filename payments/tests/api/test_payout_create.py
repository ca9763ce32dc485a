"""POST /api/v1/payouts: the payments' shape with ``payee``, sent to MTN's transfer endpoint."""

from __future__ import annotations

import json

import pytest
import responses

from conftest import dispatch, mtn_calls
from gateway.models import AuditEvent
from payments.models import Payment, Payout
from payments.states import Submission
from payments.tests.helpers import (
    OMIT,
    PAYMENTS_URL,
    PAYOUTS_URL,
    TRANSFER_URL,
    assert_error,
    assert_nothing_created,
    assert_validation_error,
    payment_body,
    payout_body,
    post_json,
)

# Payouts reserve their amount from the tenant's balance: Alice and Bob are funded.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("funded")]

PAYOUT_FIELDS = {
    "id",
    "status",
    "amount",
    "currency",
    "payee",
    "reference",
    "description",
    "metadata",
    "account",
    "failure_reason",
    "created_at",
    "updated_at",
    "batch",  # the payout batch it was created in: null for a lone payout
}


def test_create_payout_answers_201_and_calls_mtn_transfer_once(alice, mtn_http):
    body = payout_body(
        amount="250.5",
        currency="EUR",
        payee="+46733123454",
        reference="payout-7",
        metadata={"a": 1},
    )
    response = post_json(alice.client, PAYOUTS_URL, body)

    assert response.status_code == 201
    payout = response.json()
    assert set(payout) == PAYOUT_FIELDS
    assert payout["status"] == "PENDING"
    assert payout["batch"] is None
    assert payout["amount"] == "250.50"
    assert payout["currency"] == "EUR"
    assert payout["payee"] == "46733123454"
    assert payout["reference"] == "payout-7"
    assert payout["description"] is None
    assert payout["metadata"] == {"a": 1}
    assert payout["failure_reason"] is None
    assert Payout.objects.get().submission == Submission.QUEUED  # due for the dispatcher
    assert mtn_calls(mtn_http, "disbursement/v1_0/transfer") == []

    dispatch()
    [call] = mtn_calls(mtn_http, "disbursement/v1_0/transfer")
    sent = json.loads(call.request.body)
    stored = Payout.objects.get()
    assert str(stored.id) == payout["id"]
    assert sent["externalId"] == payout["id"]
    assert sent["amount"] == "250.50"
    assert sent["payee"] == {"partyIdType": "MSISDN", "partyId": "46733123454"}
    assert call.request.headers["X-Reference-Id"] == str(stored.mtn_reference_id)
    assert mtn_calls(mtn_http, "requesttopay") == []
    assert Payment.objects.count() == 0
    assert stored.submission == Submission.SUBMITTED


def test_payout_omitted_optionals_come_back_null_null_empty(alice, mtn_http):
    response = post_json(alice.client, PAYOUTS_URL, payout_body())

    assert response.status_code == 201
    payout = response.json()
    assert (payout["reference"], payout["description"], payout["metadata"]) == (None, None, {})


def test_payout_records_created_and_submitted_events(alice, mtn_http):
    payout_id = post_json(alice.client, PAYOUTS_URL, payout_body()).json()["id"]
    dispatch()

    events = alice.client.get(f"{PAYOUTS_URL}/{payout_id}/events").json()["results"]
    assert [event["action"] for event in events] == ["payout.created", "payout.submitted"]


def test_payout_with_payer_instead_of_payee_is_400(alice, mtn_http):
    response = post_json(alice.client, PAYOUTS_URL, payment_body())

    fields = assert_validation_error(response, "payee", "payer")
    assert fields["payer"] == ["Unknown field."]
    assert fields["payee"] == ["This field is required."]
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "10.505"),
        ("amount", 0),
        ("amount", "1e3"),
        ("amount", True),
        ("amount", ""),
        ("amount", OMIT),
        ("currency", "XYZ"),
        ("payee", 256700000001),
        ("payee", "12345678"),
        ("payee", OMIT),
        ("reference", "r" * 65),
        ("description", "d" * 161),
        ("metadata", {f"k{i}": i for i in range(21)}),
    ],
)
def test_invalid_payouts_are_400_and_create_nothing(alice, mtn_http, field, value):
    body = payout_body(**{"currency": "EUR", field: value})
    response = post_json(alice.client, PAYOUTS_URL, body)

    assert_validation_error(response, field)
    assert_nothing_created(mtn_http)


def test_payout_without_idempotency_key_is_400(alice, mtn_http):
    response = post_json(alice.client, PAYOUTS_URL, payout_body(), key=None)

    assert_error(response, 400, "idempotency_key_missing")
    assert_nothing_created(mtn_http)


def test_payout_malformed_json_is_400(alice, mtn_http):
    response = post_json(alice.client, PAYOUTS_URL, "{nope")

    assert_error(response, 400, "malformed_json")
    assert_nothing_created(mtn_http)


def test_payout_rejected_by_mtn_is_201_failed(alice, mtn_http):
    mtn_http.replace(
        responses.POST,
        TRANSFER_URL,
        status=500,
        json={"code": "NOT_ENOUGH_FUNDS", "message": "The payer does not have enough funds."},
    )

    response = post_json(alice.client, PAYOUTS_URL, payout_body(), HTTP_PREFER="wait=5")

    assert response.status_code == 201
    assert response["Preference-Applied"] == "wait=5"
    assert response.json()["status"] == "FAILED"
    assert response.json()["failure_reason"] == {
        "code": "NOT_ENOUGH_FUNDS",
        "message": "The payer does not have enough funds.",
    }
    assert AuditEvent.objects.filter(action="payout.failed").count() == 1


def test_payout_replay_makes_no_new_payout_and_no_new_transfer(alice, mtn_http):
    first = post_json(alice.client, PAYOUTS_URL, payout_body(), key="p-1")
    again = post_json(alice.client, PAYOUTS_URL, payout_body(), key="p-1")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payout.objects.count() == 1
    assert mtn_calls(mtn_http, "disbursement/v1_0/transfer") == []
    dispatch()
    assert len(mtn_calls(mtn_http, "disbursement/v1_0/transfer")) == 1


def test_the_same_key_on_payments_then_payouts_is_reused(alice, mtn_http):
    post_json(alice.client, PAYMENTS_URL, payment_body(), key="shared")

    response = post_json(alice.client, PAYOUTS_URL, payout_body(), key="shared")

    assert_error(response, 422, "idempotency_key_reused")
    assert Payout.objects.count() == 0
    assert mtn_calls(mtn_http, "disbursement/v1_0/transfer") == []


def test_payout_detail_and_list_show_payouts_only(alice, mtn_http):
    payout_id = post_json(alice.client, PAYOUTS_URL, payout_body(), key="a").json()["id"]
    payment_id = post_json(alice.client, PAYMENTS_URL, payment_body(), key="b").json()["id"]

    assert alice.client.get(f"{PAYOUTS_URL}/{payout_id}").json()["payee"] == "256700000001"
    assert [p["id"] for p in alice.client.get(PAYOUTS_URL).json()["results"]] == [payout_id]
    assert_error(alice.client.get(f"{PAYOUTS_URL}/{payment_id}"), 404, "not_found")
    assert_error(alice.client.get(f"{PAYMENTS_URL}/{payout_id}"), 404, "not_found")


def test_another_tenants_payout_is_not_found(alice, bob, mtn_http):
    payout_id = post_json(alice.client, PAYOUTS_URL, payout_body()).json()["id"]

    assert_error(bob.client.get(f"{PAYOUTS_URL}/{payout_id}"), 404, "not_found")
    assert_error(bob.client.get(f"{PAYOUTS_URL}/{payout_id}/events"), 404, "not_found")
    assert bob.client.get(PAYOUTS_URL).json() == {"results": [], "next": None}
