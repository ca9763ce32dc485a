"""The audit trail and idempotency keys in the admin: read-only for everyone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from gateway.models import AuditEvent, IdempotencyKey

EVENTS = reverse("admin:gateway_auditevent_changelist")
KEYS = reverse("admin:gateway_idempotencykey_changelist")


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


def test_audit_list_and_page_load(admin_client, paid):
    event = AuditEvent.objects.get(object_id=str(paid.pk), action="payment.created")

    listing = admin_client.get(EVENTS)
    page = admin_client.get(reverse("admin:gateway_auditevent_change", args=[event.pk]))

    assert listing.status_code == 200
    assert event.pk in listed(listing)
    assert page.status_code == 200
    content = page.content.decode()
    assert "payment.created" in content
    assert str(paid.mtn_reference_id) in content
    # The object links to its own page.
    assert reverse("admin:payments_payment_change", args=[paid.pk]) in content


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ({"object_type": "payment"}, {"payment.created", "payment.succeeded"}),
        ({"action": "payment.succeeded"}, {"payment.succeeded"}),
        ({"actor_type__exact": "mtn"}, {"payment.succeeded"}),
        ({"q": "payment."}, {"payment.created", "payment.succeeded"}),
        ({"q": "{payment_id}"}, {"payment.created", "payment.succeeded"}),
        ({"q": "{payment_id_upper}"}, {"payment.created", "payment.succeeded"}),
        ({"q": "mgw_testkey0"}, {"payment.created"}),
        ({"q": "tenant.created"}, {"tenant.created"}),
    ],
)
def test_audit_filters_and_search(admin_client, paid, query, actions):
    query = {
        name: value.format(payment_id=paid.pk, payment_id_upper=str(paid.pk).upper())
        for name, value in query.items()
    }

    response = admin_client.get(EVENTS, query)

    assert response.status_code == 200
    found = {event.action for event in response.context["cl"].result_list}
    # tenant.created and api_key.created exist for alice (and bob, when made) too.
    assert found == actions


def test_audit_search_by_request_id(admin_client, tenant):
    event = AuditEvent.objects.create(
        tenant=tenant,
        object_type="tenant",
        object_id=str(tenant.pk),
        action="tenant.updated",
        actor_type="staff",
        actor_id="someone",
        request_id="req-7f3a",
    )

    found = admin_client.get(EVENTS, {"q": "req-7f3a"})
    by_actor = admin_client.get(EVENTS, {"q": "someone"})
    partial = admin_client.get(EVENTS, {"q": "req-7f"})

    assert listed(found) == {event.pk}
    assert listed(by_actor) == {event.pk}
    assert listed(partial) == set()


def test_nobody_adds_changes_or_deletes_audit_events(admin_client, paid):
    event = AuditEvent.objects.filter(object_id=str(paid.pk)).first()
    change = reverse("admin:gateway_auditevent_change", args=[event.pk])

    assert admin_client.get(reverse("admin:gateway_auditevent_add")).status_code == 403
    assert admin_client.post(change, {"action": "forged"}).status_code == 403
    assert (
        admin_client.get(reverse("admin:gateway_auditevent_delete", args=[event.pk])).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.action != "forged"
    content = admin_client.get(change).content.decode()
    assert 'name="_save"' not in content


def test_idempotency_keys_are_listed_read_only(admin_client, paid):
    key = IdempotencyKey.objects.create(
        tenant=paid.tenant,
        key="order-1001-attempt",
        fingerprint="f" * 64,
        state=IdempotencyKey.State.COMPLETED,
        resource_type="payment",
        resource_id=paid.pk,
        response_status=202,
        response_body={"id": str(paid.pk), "note": "<b>not bold</b>"},
        expires_at=timezone.now() + timedelta(hours=24),
    )

    listing = admin_client.get(KEYS)
    found = admin_client.get(KEYS, {"q": "order-1001-attempt"})
    by_resource = admin_client.get(KEYS, {"q": str(paid.pk)})
    missing = admin_client.get(KEYS, {"q": "order-1001"})
    page = admin_client.get(reverse("admin:gateway_idempotencykey_change", args=[key.pk]))

    assert listing.status_code == 200
    assert listed(found) == {key.pk}
    assert listed(by_resource) == {key.pk}
    assert listed(missing) == set()
    assert page.status_code == 200
    content = page.content.decode()
    assert "&lt;b&gt;not bold&lt;/b&gt;" in content
    assert reverse("admin:payments_payment_change", args=[paid.pk]) in content
    assert admin_client.post(page.request["PATH_INFO"], {"key": "x"}).status_code == 403
    key.refresh_from_db()
    assert key.key == "order-1001-attempt"
    assert admin_client.get(reverse("admin:gateway_idempotencykey_add")).status_code == 403


def test_site_header(admin_client, db):
    response = admin_client.get(reverse("admin:index"))

    assert "momo-gateway support" in response.content.decode()
