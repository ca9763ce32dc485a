"""The refunds API: POST /payments/{id}/refunds, GET /refunds, /refunds/{id}, its events."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from conftest import dispatch, mtn_calls
from gateway.audit import Actor
from gateway.models import IdempotencyKey
from ledger.services import ledger_adjust
from payments import services
from payments.models import Payment, Refund
from payments.states import Status
from payments.tests.helpers import assert_error, assert_validation_error, post_json
from payments.tests.services.conftest import paid, queued, refund_of

pytestmark = pytest.mark.django_db

REFUND_FIELDS = {
    "id",
    "payment",
    "status",
    "amount",
    "currency",
    "reason",
    "account",
    "failure_reason",
    "created_at",
    "updated_at",
}


def refunds_url(payment) -> str:
    return f"/api/v1/payments/{payment.pk}/refunds"


def refund_posts(mtn) -> list:
    return [c for c in mtn_calls(mtn, "disbursement/v1_0/refund$") if c.request.method == "POST"]


# --- create -------------------------------------------------------------------------------------


def test_create_answers_201_with_the_refund_and_sends_it_to_mtn(alice, mtn):
    payment = paid(alice.tenant, amount="5000")

    response = post_json(alice.client, refunds_url(payment), {"amount": 4000, "reason": "damaged"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == REFUND_FIELDS
    assert body["payment"] == str(payment.pk)
    assert (body["status"], body["amount"], body["currency"]) == ("PENDING", "4000", "UGX")
    assert body["reason"] == "damaged"
    assert body["failure_reason"] is None
    assert Refund.objects.get().pk == uuid.UUID(body["id"])
    assert refund_posts(mtn) == []  # stored due now; the dispatcher sends it
    dispatch()
    assert len(refund_posts(mtn)) == 1


def test_an_empty_body_refunds_all_that_is_left(alice, mtn):
    payment = paid(alice.tenant, amount="5000")
    refund_of(payment, "1500")

    response = post_json(alice.client, refunds_url(payment), {})

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "3500"
    assert response.json()["reason"] is None


def test_a_replay_answers_the_same_and_sends_nothing_more(alice, mtn):
    payment = paid(alice.tenant)
    first = post_json(alice.client, refunds_url(payment), {"amount": "100"}, key="r-1")

    again = post_json(alice.client, refunds_url(payment), {"amount": "100"}, key="r-1")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Refund.objects.count() == 1
    dispatch()
    assert len(refund_posts(mtn)) == 1


@pytest.mark.parametrize(
    ("setup", "body", "code"),
    [
        ("pending", {}, "payment_not_refundable"),
        ("paid", {"amount": 1001}, "refund_exceeds_payment"),
        ("short", {"amount": 600}, "insufficient_funds"),
    ],
)
def test_a_refusal_decided_while_executing_is_stored_and_replayed(alice, mtn, setup, body, code):
    payment = queued(alice.tenant) if setup == "pending" else paid(alice.tenant, amount="1000")
    if setup == "short":
        ledger_adjust(
            tenant_id=alice.tenant.pk,
            currency="UGX",
            amount=Decimal("-500"),
            reason="paid out by hand",
            actor=Actor.system(),
        )

    first = post_json(alice.client, refunds_url(payment), body, key="refused")
    assert_error(first, 422, code)
    # Even once the reason is gone, the same key answers the same 422.
    if setup == "pending":
        services.transfer_transition(transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn())
    again = post_json(alice.client, refunds_url(payment), body, key="refused")

    assert again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert not Refund.objects.exists()
    assert refund_posts(mtn) == []
    assert IdempotencyKey.objects.get(key="refused").response_status == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "1.5"}, "amount"),  # UGX has no decimals
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"reason": "x" * 161}, "reason"),
        ({"reason": 42}, "reason"),
        ({"currency": "UGX"}, "currency"),  # unknown field
        ({"payer": "256700000000"}, "payer"),
    ],
)
def test_a_malformed_body_is_400_and_stores_nothing(alice, mtn, body, field):
    payment = paid(alice.tenant)

    response = post_json(alice.client, refunds_url(payment), body)

    assert_validation_error(response, field)
    assert not Refund.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert refund_posts(mtn) == []


def test_an_eur_payment_takes_two_decimals_and_refuses_three(alice, mtn):
    payment = paid(alice.tenant, amount="12.50", currency="EUR")

    refused = post_json(alice.client, refunds_url(payment), {"amount": "1.005"}, key="a")
    accepted = post_json(alice.client, refunds_url(payment), {"amount": "1.5"}, key="b")

    assert_validation_error(refused, "amount")
    assert accepted.status_code == 201
    assert accepted.json()["amount"] == "1.50"


def test_a_refund_without_an_idempotency_key_is_400(alice, mtn):
    payment = paid(alice.tenant)

    response = post_json(alice.client, refunds_url(payment), {}, key=None)

    assert_error(response, 400, "idempotency_key_missing")
    assert not Refund.objects.exists()


def test_another_tenants_payment_cannot_be_refunded(alice, bob, mtn):
    payment = paid(alice.tenant)

    response = post_json(bob.client, refunds_url(payment), {})
    unknown = post_json(bob.client, f"/api/v1/payments/{uuid.uuid4()}/refunds", {})

    assert_error(response, 404, "not_found")
    assert_error(unknown, 404, "not_found")
    assert not Refund.objects.exists()
    assert not IdempotencyKey.objects.exists()


def test_a_payment_shows_what_was_refunded(alice, mtn):
    payment = paid(alice.tenant, amount="1000")
    refund = refund_of(payment, "250")
    services.transfer_transition(transfer=refund, target=Status.SUCCESSFUL, actor=Actor.mtn())
    refund_of(payment, "100")  # pending: not refunded yet

    shown = alice.client.get(f"/api/v1/payments/{payment.pk}").json()

    assert shown["amount_refunded"] == "250"


# --- reads --------------------------------------------------------------------------------------


def test_detail_and_events_show_the_refund(alice, mtn):
    payment = paid(alice.tenant)
    refund = refund_of(payment, "100")

    detail = alice.client.get(f"/api/v1/refunds/{refund.pk}")
    events = alice.client.get(f"/api/v1/refunds/{refund.pk}/events")

    assert detail.status_code == 200
    assert detail.json()["id"] == str(refund.pk)
    assert set(detail.json()) == REFUND_FIELDS
    assert [e["action"] for e in events.json()["results"]] == ["refund.created"]


def test_another_tenants_refund_is_404_on_detail_and_events(alice, bob, mtn):
    refund = refund_of(paid(alice.tenant), "100")

    for path in (f"/api/v1/refunds/{refund.pk}", f"/api/v1/refunds/{refund.pk}/events"):
        assert_error(bob.client.get(path), 404, "not_found")
    assert_error(alice.client.get("/api/v1/refunds/not-a-uuid"), 404, "not_found")


def test_list_filters_by_payment_and_status_newest_first(alice, bob, mtn):
    first = paid(alice.tenant)
    second = paid(alice.tenant)
    a = refund_of(first, "100")
    b = refund_of(first, "200")
    c = refund_of(second, "300")
    services.transfer_transition(transfer=c, target=Status.FAILED, actor=Actor.mtn())
    refund_of(paid(bob.tenant), "50")

    def ids(query: str) -> list[str]:
        response = alice.client.get(f"/api/v1/refunds{query}")
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids("") == [str(c.pk), str(b.pk), str(a.pk)]
    assert ids(f"?payment={first.pk}") == [str(b.pk), str(a.pk)]
    assert ids("?status=FAILED") == [str(c.pk)]
    assert ids(f"?payment={second.pk}&status=PENDING") == []


def test_list_pages_with_a_cursor(alice, mtn):
    payment = paid(alice.tenant, amount="1000")
    made = [refund_of(payment, "10") for _ in range(3)]

    page = alice.client.get("/api/v1/refunds?limit=2").json()
    rest = alice.client.get(page["next"]).json()

    seen = [r["id"] for r in page["results"] + rest["results"]]
    assert seen == [str(r.pk) for r in reversed(made)]
    assert rest["next"] is None


@pytest.mark.parametrize(
    "query",
    ["?payment=nope", "?status=DONE", "?limit=0", "?limit=201", "?cursor=abc", "?reference=x"],
)
def test_a_malformed_or_unknown_list_parameter_is_400(alice, query):
    response = alice.client.get(f"/api/v1/refunds{query}")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {query[1:].split("=")[0]}


def test_a_payments_refunds_path_takes_only_post(alice, mtn):
    payment = paid(alice.tenant)

    assert_error(alice.client.get(refunds_url(payment)), 405, "method_not_allowed")
    assert Payment.objects.count() == 1
