"""GET /api/v1/payments/{id} and /events; 404s, 405s and cross-tenant isolation."""

from __future__ import annotations

import uuid

import pytest

from conftest import dispatch
from gateway.audit import Actor
from gateway.models import AuditEvent
from payments import services
from payments.models import Payment
from payments.states import Status
from payments.tests.helpers import (
    PAYMENTS_URL,
    assert_error,
    payment_body,
    post_json,
    transfer_events_count,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(alice, mtn_http) -> dict:
    response = post_json(
        alice.client, PAYMENTS_URL, payment_body(reference="order-1", metadata={"cart": [1, 2]})
    )
    assert response.status_code == 201
    return response.json()


def test_detail_is_the_payment_as_created(alice, payment):
    response = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}")

    assert response.status_code == 200
    assert response.json() == payment


def test_detail_shows_the_current_state(alice, payment):
    stored = Payment.objects.get(pk=payment["id"])
    services.transfer_transition(transfer=stored, target=Status.SUCCESSFUL, actor=Actor.mtn())

    detail = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}").json()

    assert detail["status"] == "SUCCESSFUL"
    assert detail["failure_reason"] is None
    assert detail["created_at"] == payment["created_at"]


def test_detail_accepts_an_upper_case_uuid(alice, payment):
    response = alice.client.get(f"{PAYMENTS_URL}/{payment['id'].upper()}")

    assert response.status_code == 200
    assert response.json()["id"] == payment["id"]


@pytest.mark.parametrize(
    "payment_id", [str(uuid.uuid4()), "not-a-uuid", "12345", "%00", "' OR 1=1 --"]
)
def test_unknown_or_malformed_id_is_404(alice, payment, payment_id):
    assert_error(alice.client.get(f"{PAYMENTS_URL}/{payment_id}"), 404, "not_found")
    assert_error(alice.client.get(f"{PAYMENTS_URL}/{payment_id}/events"), 404, "not_found")


def test_another_tenants_payment_is_404_on_detail_and_events(alice, bob, payment):
    assert_error(bob.client.get(f"{PAYMENTS_URL}/{payment['id']}"), 404, "not_found")
    assert_error(bob.client.get(f"{PAYMENTS_URL}/{payment['id']}/events"), 404, "not_found")
    assert bob.client.get(PAYMENTS_URL).json() == {"results": [], "next": None}


def test_events_are_the_audit_trail_oldest_first(alice, payment):
    dispatch()  # the dispatcher submits it
    response = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}/events")

    assert response.status_code == 200
    assert set(response.json()) == {"results"}
    events = response.json()["results"]
    assert [event["action"] for event in events] == ["payment.created", "payment.submitted"]
    for event in events:
        assert set(event) == {"at", "action", "actor", "data"}
        assert event["at"].endswith("Z")
    assert events[0]["at"] <= events[1]["at"]
    assert events[0]["actor"] == f"api_key:{alice.api_key[:12]}"
    assert events[0]["data"]["amount"] == "1000"
    assert events[0]["data"]["currency"] == "UGX"
    assert events[1]["actor"] == "system"
    assert events[1]["data"] == {"attempt": 1, "already_existed": False}


def test_events_show_a_final_transition_last(alice, payment):
    stored = Payment.objects.get(pk=payment["id"])
    services.transfer_transition(
        transfer=stored,
        target=Status.FAILED,
        actor=Actor.mtn(),
        failure_code="APPROVAL_REJECTED",
        failure_message="Rejected by the payer",
    )

    events = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}/events").json()["results"]

    assert [event["action"] for event in events][-1] == "payment.failed"
    assert events[-1]["actor"] == "mtn"
    assert events[-1]["data"]["status"] == "FAILED"


def test_events_do_not_leak_other_payments_events(alice, payment, mtn_http):
    other = post_json(alice.client, PAYMENTS_URL, payment_body(), key="other").json()
    dispatch()

    events = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}/events").json()["results"]

    assert len(events) == 2
    assert all(other["payer"] not in str(event["data"]) for event in events)
    assert AuditEvent.objects.filter(object_id=other["id"]).count() == 2


@pytest.mark.parametrize("method", ["delete", "put", "patch", "post"])
def test_writing_methods_on_a_payment_are_405_and_change_nothing(alice, payment, method):
    events_before = transfer_events_count()

    response = getattr(alice.client, method)(
        f"{PAYMENTS_URL}/{payment['id']}", {"status": "SUCCESSFUL"}, format="json"
    )

    assert_error(response, 405, "method_not_allowed")
    assert Payment.objects.get(pk=payment["id"]).status == "PENDING"
    assert Payment.objects.count() == 1
    assert transfer_events_count() == events_before


@pytest.mark.parametrize("method", ["delete", "put", "patch"])
def test_writing_methods_on_the_collection_are_405(alice, payment, method):
    response = getattr(alice.client, method)(PAYMENTS_URL, {}, format="json")

    assert_error(response, 405, "method_not_allowed")
    assert Payment.objects.count() == 1


def test_post_on_events_is_405(alice, payment):
    response = alice.client.post(f"{PAYMENTS_URL}/{payment['id']}/events", {}, format="json")

    assert_error(response, 405, "method_not_allowed")


def test_another_tenant_cannot_delete_either(alice, bob, payment):
    response = bob.client.delete(f"{PAYMENTS_URL}/{payment['id']}")

    assert_error(response, 405, "method_not_allowed")
    assert Payment.objects.filter(pk=payment["id"]).exists()
