"""Query budgets: each hot endpoint runs a fixed, small number of SQL statements.

The budgets count every statement the test database sees, transaction control included
(savepoints inside the test's transaction stand for BEGIN/COMMIT in production). A change
that adds a query to a hot path has to change a number here, on purpose.

Each test calls the endpoint once before it counts. Where the cache is shared (Redis), the
API key and its tenant then come from the web process's key cache (tenants/key_cache.py),
as on every request after a key's first in production: ``AUTH`` is the authentication read,
0 there and 1 with the per-process cache of SQLite runs, which caches no keys. Likewise
``ROUTE``, the choice of a new payment's or payout's MTN account (payments/routing.py): 0
where the shared cache holds the generation its cached routes depend on, else 1.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import fund_tenant
from gateway.audit import Actor
from payments.models import Payment
from payments.services import transfer_transition
from payments.states import Status
from tenants import key_cache

pytestmark = pytest.mark.django_db

BODY = {"amount": "15.00", "currency": "EUR", "payer": "256772123456"}


def auth_reads() -> int:
    return 0 if key_cache.in_use() else 1


def route_reads() -> int:
    return 0 if key_cache.in_use() else 1


def statements(run) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = run()
    assert response.status_code < 300, response.content
    return [query["sql"] for query in captured.captured_queries]


def create(client, key: str):
    return client.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)


def data_statements(sqls: list[str]) -> list[str]:
    """Statements that read or write rows (transaction control left out)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "BEGIN", "COMMIT", "SET LOCAL")
    return [sql for sql in sqls if not sql.upper().startswith(control)]


def test_create_reads_two_rows_and_writes_in_two_rounds(alice, mtn_http):
    create(alice.client, "warm-up")  # the API key's last_used_at is refreshed once

    sqls = data_statements(statements(lambda: create(alice.client, "budget")))

    # (SELECT key,) (SELECT MTN account claims,) SELECT idempotency key; INSERT key, payment
    # and audit event, waking the dispatcher (on PostgreSQL one statement with its NOTIFY,
    # elsewhere three, one commit); UPDATE key with the answer. No MTN call, so no UPDATE of
    # the payment nor its "submitted" event here: the dispatcher writes those.
    expected = (3 if connection.vendor == "postgresql" else 5) + auth_reads() + route_reads()
    assert len(sqls) == expected, sqls
    assert sum(sql.startswith("SELECT") for sql in sqls) == 1 + auth_reads() + route_reads()


def test_replay_is_one_read_after_authentication(alice, mtn_http):
    create(alice.client, "again")

    sqls = statements(lambda: create(alice.client, "again"))

    assert len(sqls) == 1 + auth_reads(), sqls
    assert all(sql.startswith("SELECT") for sql in sqls)


def test_retrieve_is_one_read_after_authentication(alice, mtn_http):
    payment_id = create(alice.client, "one").json()["id"]

    sqls = statements(lambda: alice.client.get(f"/api/v1/payments/{payment_id}"))

    assert len(sqls) == 1 + auth_reads(), sqls


def test_list_costs_the_same_for_one_row_and_a_full_page(alice, mtn_http):
    create(alice.client, "first")
    one_row = statements(lambda: alice.client.get("/api/v1/payments?limit=1"))
    for index in range(12):
        create(alice.client, f"more-{index}")

    full_page = statements(lambda: alice.client.get("/api/v1/payments?limit=10"))

    assert len(one_row) == len(full_page) == 1 + auth_reads(), full_page


def test_events_are_two_reads_after_authentication(alice, mtn_http):
    payment_id = create(alice.client, "events").json()["id"]

    sqls = statements(lambda: alice.client.get(f"/api/v1/payments/{payment_id}/events"))

    assert len(sqls) == 2 + auth_reads(), sqls


def test_a_repeated_signed_callback_is_answered_with_a_fixed_budget(alice, mtn_http, settings):
    payment = Payment.objects.get(pk=create(alice.client, "cb").json()["id"])
    Payment.objects.filter(pk=payment.pk).update(status=Status.SUCCESSFUL)
    body = json.dumps(
        {
            "externalId": str(payment.pk),
            "amount": "15",
            "currency": "EUR",
            "status": "SUCCESSFUL",
            "payer": {"partyIdType": "MSISDN", "partyId": "256772123456"},
        }
    ).encode()
    signature = hmac.new(settings.MTN_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()

    sqls = data_statements(
        statements(
            lambda: alice.client.post(
                "/api/v1/webhooks/mtn",
                body,
                content_type="application/json",
                HTTP_X_SIGNATURE_256=signature,
            )
        )
    )

    # Find the payment by externalId, store the callback with its outcome: one write.
    assert len(sqls) == 2, sqls


# --- payouts and refunds: their money rules cost a fixed number of statements -------------------


def payout(client, key: str):
    body = {"amount": "15.00", "currency": "EUR", "payee": "256772123456"}
    return client.post("/api/v1/payouts", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def paid_payment(client, key: str) -> Payment:
    payment = Payment.objects.select_related("tenant").get(pk=create(client, key).json()["id"])
    transfer_transition(transfer=payment, target=Status.SUCCESSFUL, actor=Actor.mtn())
    return payment


def refund(client, payment: Payment, key: str):
    return client.post(
        f"/api/v1/payments/{payment.pk}/refunds",
        {"amount": "1.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_payout_create_adds_one_statement_for_the_reservation(alice, mtn_http):
    fund_tenant(alice.tenant, "EUR", "1000")
    payout(alice.client, "warm-up")

    sqls = data_statements(statements(lambda: payout(alice.client, "budget")))

    # A payment's statements, plus the reservation: on PostgreSQL one statement (the
    # conditional debit, the ledger transaction, the credit of reserved and both entries);
    # elsewhere the ledger's portable path (find the accounts, two updates, three inserts).
    expected = (4 if connection.vendor == "postgresql" else 10) + auth_reads() + route_reads()
    assert len(sqls) == expected, sqls
    assert (
        sum(sql.startswith("SELECT") for sql in sqls)
        == (1 if connection.vendor == "postgresql" else 2) + auth_reads() + route_reads()
    )


def test_refund_create_locks_the_payment_and_sums_its_refunds(alice, mtn_http):
    payment = paid_payment(alice.client, "paid")

    sqls = data_statements(statements(lambda: refund(alice.client, payment, "budget")))

    # (SELECT key,) SELECT payment, idempotency key; SELECT payment FOR UPDATE, SUM of its
    # refunds, whether it or a refund of it is flagged for review; the reservation; INSERT
    # key, refund and event (with the NOTIFY); UPDATE key.
    expected = (8 if connection.vendor == "postgresql" else 14) + auth_reads()
    assert len(sqls) == expected, sqls


def test_refund_replay_is_two_reads_after_authentication(alice, mtn_http):
    payment = paid_payment(alice.client, "paid")
    refund(alice.client, payment, "again")

    sqls = statements(lambda: refund(alice.client, payment, "again"))

    assert len(sqls) == 2 + auth_reads(), sqls
    assert all(sql.startswith("SELECT") for sql in sqls)


def test_refund_reads_cost_the_same_as_payments(alice, mtn_http):
    payment = paid_payment(alice.client, "paid")
    refund_id = refund(alice.client, payment, "one").json()["id"]
    one_row = statements(lambda: alice.client.get("/api/v1/refunds?limit=1"))
    for index in range(3):
        refund(alice.client, payment, f"more-{index}")

    detail = statements(lambda: alice.client.get(f"/api/v1/refunds/{refund_id}"))
    events = statements(lambda: alice.client.get(f"/api/v1/refunds/{refund_id}/events"))
    full_page = statements(lambda: alice.client.get(f"/api/v1/refunds?payment={payment.pk}"))

    assert (len(detail), len(events)) == (1 + auth_reads(), 2 + auth_reads()), (detail, events)
    assert len(one_row) == len(full_page) == 1 + auth_reads(), full_page


def test_a_payment_shows_amount_refunded_without_reading_its_refunds(alice, mtn_http):
    payment = paid_payment(alice.client, "paid")
    refund(alice.client, payment, "one")

    sqls = statements(lambda: alice.client.get(f"/api/v1/payments/{payment.pk}"))

    assert len(sqls) == 1 + auth_reads(), sqls
