"""Query budgets: each hot endpoint runs a fixed, small number of SQL statements.

The budgets count every statement the test database sees, transaction control included
(savepoints inside the test's transaction stand for BEGIN/COMMIT in production). A change
that adds a query to a hot path has to change a number here, on purpose.

Each test calls the endpoint once before it counts. Where the cache is shared (Redis), the
API key and its tenant then come from the web process's key cache (tenants/key_cache.py),
as on every request after a key's first in production: ``AUTH`` is the authentication read,
0 there and 1 with the per-process cache of SQLite runs, which caches no keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.models import Payment
from payments.states import Status
from tenants import key_cache

pytestmark = pytest.mark.django_db

BODY = {"amount": "15.00", "currency": "EUR", "payer": "256772123456"}


def auth_reads() -> int:
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

    # (SELECT key,) SELECT idempotency key; INSERT key, payment and audit event (on
    # PostgreSQL one statement, elsewhere three, one commit); then, after MTN's answer,
    # UPDATE payment, INSERT audit event, UPDATE key (one commit).
    expected = (5 if connection.vendor == "postgresql" else 7) + auth_reads()
    assert len(sqls) == expected, sqls
    assert sum(sql.startswith("SELECT") for sql in sqls) == 1 + auth_reads()


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
