"""Merchant webhook deliveries in the admin: list, filters, search, page, redeliver."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from django.contrib.messages import get_messages
from django.urls import reverse

from gateway.admin import MAX_ROWS_PER_NETWORK_ACTION
from gateway.models import AuditEvent
from payments.tests.admin.factories import HOSTILE, make_transfer_with_history
from webhooks.models import DeliveryAttempt, MerchantDelivery

DELIVERIES = reverse("admin:webhooks_merchantdelivery_changelist")
ALICE_HOOKS = "https://alice.example.com/hooks"


def listed(response: Any) -> set[str]:
    return {row.event_id for row in response.context["cl"].result_list}


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def delivery(paid) -> MerchantDelivery:
    return MerchantDelivery.objects.get(object_id=paid.pk)


@pytest.fixture
def merchant(settings) -> Any:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # no DNS lookup for the test's host
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def redeliver(client: Any, *deliveries: MerchantDelivery) -> Any:
    return client.post(
        DELIVERIES,
        {"action": "redeliver", "_selected_action": [d.pk for d in deliveries]},
        follow=True,
    )


def test_delivery_list_shows_the_columns(admin_client, paid, delivery):
    response = admin_client.get(DELIVERIES)

    assert response.status_code == 200
    assert listed(response) == {delivery.event_id}
    content = response.content.decode()
    for text in (delivery.event_id, "alice", "payment.succeeded", "Pending: due for an attempt"):
        assert text in content
    assert reverse("admin:payments_payment_change", args=[paid.pk]) in content


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ({"state__exact": "pending"}, "alice"),
        ({"state__exact": "no_endpoint"}, "bob"),
        ({"event_type": "payout.succeeded"}, "bob"),
        ({"event_type": "payment.succeeded"}, "alice"),
        ({"q": "{alice_event}"}, "alice"),
        ({"q": "{bob_object}"}, "bob"),
    ],
)
def test_delivery_filters_and_search(admin_client, delivery, other_tenant, query, who):
    from payments.tests.admin.factories import make_payout_with_history

    payout = make_payout_with_history(other_tenant)  # bob has no webhook URL
    bobs = MerchantDelivery.objects.get(object_id=payout.pk)
    query = {
        name: value.format(alice_event=delivery.event_id, bob_object=payout.pk)
        for name, value in query.items()
    }

    response = admin_client.get(DELIVERIES, query)

    expected = {"alice": delivery, "bob": bobs}[who]
    assert listed(response) == {expected.event_id}


def test_delivery_filter_by_tenant(admin_client, delivery, other_tenant):
    assert listed(admin_client.get(DELIVERIES, {"tenant__id__exact": other_tenant.pk})) == set()
    assert listed(admin_client.get(DELIVERIES, {"tenant__id__exact": delivery.tenant_id})) == {
        delivery.event_id
    }


def test_delivery_page_shows_payload_and_attempts(admin_client, delivery):
    response = admin_client.get(
        reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk])
    )

    assert response.status_code == 200
    content = response.content.decode()
    # Pretty JSON, escaped: the merchant's metadata travels in the payload.
    assert HOSTILE not in content
    assert "&lt;script&gt;" in content
    assert f"&quot;id&quot;: &quot;{delivery.event_id}&quot;" in content
    # The attempt, read-only.
    assert "merchant is down" in content
    assert "500" in content
    assert "Redeliver webhook" in content
    assert 'name="_save"' not in content


def test_delivery_cannot_be_changed_added_or_deleted(admin_client, delivery):
    change = reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk])
    before = MerchantDelivery.objects.filter(pk=delivery.pk).values().get()

    assert admin_client.post(change, {"state": "succeeded"}).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_merchantdelivery_add")).status_code == 403
    delete = reverse("admin:webhooks_merchantdelivery_delete", args=[delivery.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert MerchantDelivery.objects.filter(pk=delivery.pk).values().get() == before
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_redeliver_action_records_an_attempt_and_an_audit_event(admin_client, delivery, merchant):
    merchant.post(ALICE_HOOKS, status=204)

    response = redeliver(admin_client, delivery)

    assert messages_of(response) == [
        f"Webhook {delivery.event_id} redelivered: the merchant answered HTTP 204."
    ]
    [call] = merchant.calls
    assert call.request.headers["webhook-id"] == delivery.event_id
    assert json.loads(call.request.body) == delivery.payload
    attempts = list(delivery.attempts.order_by("attempted_at", "id"))
    assert [(a.status_code, a.triggered_by) for a in attempts] == [
        (500, "schedule"),
        (204, "staff:admin"),
    ]
    delivery.refresh_from_db()
    assert delivery.state == MerchantDelivery.State.SUCCEEDED
    event = AuditEvent.objects.get(action="webhook.redelivered")
    assert (event.actor_type, event.actor_id) == ("staff", "admin")
    assert (event.object_type, event.object_id) == ("payment", str(delivery.object_id))
    assert event.data == {"event_id": delivery.event_id, "status_code": 204, "succeeded": True}


def test_redeliver_that_fails_is_reported_and_keeps_the_schedule(admin_client, delivery, merchant):
    merchant.post(ALICE_HOOKS, status=503, body="still down")
    schedule = (delivery.state, delivery.next_attempt_at)

    response = redeliver(admin_client, delivery)

    [message] = messages_of(response)
    assert message.startswith(f"Webhook {delivery.event_id} redelivery failed")
    assert "HTTP 503" in message
    delivery.refresh_from_db()
    assert (delivery.state, delivery.next_attempt_at) == schedule
    assert delivery.attempts.count() == 2
    assert AuditEvent.objects.get(action="webhook.redelivered").data["succeeded"] is False


def test_redeliver_button_on_the_page(admin_client, delivery, merchant):
    merchant.post(ALICE_HOOKS, status=200)
    url = reverse("admin:webhooks_merchantdelivery_object_action", args=[delivery.pk, "redeliver"])
    page = admin_client.get(reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk]))
    assert url in page.content.decode()

    response = admin_client.post(url, follow=True)

    assert response.status_code == 200
    assert "redelivered" in messages_of(response)[0]
    assert delivery.attempts.count() == 2


def test_redeliver_without_a_webhook_url_says_why_and_records_no_attempt(
    admin_client, tenant, other_tenant, merchant
):
    from payments.tests.admin.factories import make_payout_with_history

    payout = make_payout_with_history(other_tenant)  # bob has no webhook URL
    delivery = MerchantDelivery.objects.get(object_id=payout.pk)
    before = MerchantDelivery.objects.filter(pk=delivery.pk).values().get()

    response = redeliver(admin_client, delivery)

    [message] = messages_of(response)
    assert "not redelivered" in message
    assert "The tenant bob has no webhook URL." in message
    assert "no attempt was recorded" in message
    assert not delivery.attempts.exists()
    assert MerchantDelivery.objects.filter(pk=delivery.pk).values().get() == before
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()
    assert len(merchant.calls) == 0


def test_redeliver_refuses_too_many_rows(admin_client, tenant, merchant):
    merchant.post(ALICE_HOOKS, status=200)
    for index in range(MAX_ROWS_PER_NETWORK_ACTION + 1):
        make_transfer_with_history(tenant, reference=f"r{index}")
    one = MerchantDelivery.objects.first()

    # "Select all N" on the list: one box ticked, select_across set.
    response = admin_client.post(
        DELIVERIES,
        {"action": "redeliver", "select_across": "1", "index": "0", "_selected_action": [one.pk]},
        follow=True,
    )

    [message] = messages_of(response)
    assert "Nothing was redelivered" in message
    assert len(merchant.calls) == 0
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()


def test_staff_without_permission_cannot_redeliver(client, django_user_model, delivery, merchant):
    user = django_user_model.objects.create_user(username="nobody", is_staff=True)
    client.force_login(user)
    url = reverse("admin:webhooks_merchantdelivery_object_action", args=[delivery.pk, "redeliver"])

    assert client.post(url).status_code == 403
    assert redeliver(client, delivery).status_code == 403
    assert len(merchant.calls) == 0
