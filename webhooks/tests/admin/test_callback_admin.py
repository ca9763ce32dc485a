"""MTN callbacks in the admin: what arrived and what the gateway made of it; read-only."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from payments.tests.admin.factories import HOSTILE
from webhooks.models import MtnCallback

CALLBACKS = reverse("admin:webhooks_mtncallback_changelist")


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def callback(paid) -> MtnCallback:
    return MtnCallback.objects.get(object_id=paid.pk)


@pytest.fixture
def unmatched(db) -> MtnCallback:
    return MtnCallback.objects.create(
        door=MtnCallback.Door.SIGNED,
        method="POST",
        headers={"X-Signature-256": "sha256=abc"},
        raw_body='{"externalId": "nobody", "status": "SUCCESSFUL"}',
        signature_valid=True,
        reported_status="SUCCESSFUL",
        outcome=MtnCallback.Outcome.UNMATCHED,
        outcome_detail="No payment or payout has this externalId.",
    )


def test_callback_list_shows_the_columns(admin_client, paid, callback, unmatched):
    response = admin_client.get(CALLBACKS)

    assert response.status_code == 200
    assert listed(response) == {callback.pk, unmatched.pk}
    content = response.content.decode()
    for text in ("Per-payment URL", "Signed (X-Signature-256)", "Applied", "No known payment"):
        assert text in content
    assert reverse("admin:payments_payment_change", args=[paid.pk]) in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"door__exact": "signed"}, "unmatched"),
        ({"door__exact": "token"}, "callback"),
        ({"outcome__exact": "unmatched"}, "unmatched"),
        ({"outcome__exact": "applied"}, "callback"),
        ({"q": "{payment_id}"}, "callback"),
        ({"q": "{unmatched_id}"}, "unmatched"),
        ({"q": str(uuid.uuid4())}, None),
        ({"q": "SUCCESSFUL"}, None),  # the body is not searched
    ],
)
def test_callback_filters_and_search(admin_client, paid, callback, unmatched, query, expected):
    query = {
        name: value.format(payment_id=paid.pk, unmatched_id=unmatched.pk)
        for name, value in query.items()
    }

    response = admin_client.get(CALLBACKS, query)

    rows = {"callback": {callback.pk}, "unmatched": {unmatched.pk}, None: set()}
    assert listed(response) == rows[expected]


def test_callback_page_shows_raw_body_and_headers_escaped(admin_client, callback):
    response = admin_client.get(reverse("admin:webhooks_mtncallback_change", args=[callback.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert HOSTILE not in content
    assert "&lt;script&gt;" in content
    assert "&quot;externalId&quot;" in content  # the raw body
    assert "&quot;User-Agent&quot;" in content  # the headers
    assert "203.0.113.7" in content
    assert "Confirmed by MTN&#x27;s status endpoint." in content
    assert 'name="_save"' not in content


def test_callback_cannot_be_changed_added_or_deleted(admin_client, callback):
    change = reverse("admin:webhooks_mtncallback_change", args=[callback.pk])

    assert admin_client.post(change, {"outcome": "unmatched"}).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_mtncallback_add")).status_code == 403
    delete = reverse("admin:webhooks_mtncallback_delete", args=[callback.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    callback.refresh_from_db()
    assert callback.outcome == MtnCallback.Outcome.APPLIED
