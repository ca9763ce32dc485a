"""'Re-check status with MTN': the list action and the button on a payment's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from conftest import mtn_calls
from gateway.admin import MAX_ROWS_PER_NETWORK_ACTION
from gateway.models import AuditEvent
from payments.models import Payment
from payments.states import Status
from payments.tests.admin.factories import make_transfer
from webhooks.models import MerchantDelivery

PAYMENTS = reverse("admin:payments_payment_changelist")
MTN_BASE = "https://mtn.test"


def status_url(payment: Payment) -> str:
    return f"{MTN_BASE}/collection/v1_0/requesttopay/{payment.mtn_reference_id}"


def mtn_says(mtn_http: Any, payment: Payment, status: str = "SUCCESSFUL", **overrides: Any):
    body = {
        "status": status,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "externalId": str(payment.pk),
        "financialTransactionId": "123",
        "payer": {"partyIdType": "MSISDN", "partyId": payment.payer},
    }
    body.update(overrides)
    mtn_http.get(status_url(payment), json=body)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def recheck(client: Any, *payments: Payment) -> Any:
    return client.post(
        PAYMENTS,
        {"action": "recheck_with_mtn", "_selected_action": [p.pk for p in payments]},
        follow=True,
    )


def button_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_object_action", args=[payment.pk, "recheck_with_mtn"])


@pytest.fixture
def pending(tenant: Any) -> Payment:
    return make_transfer(tenant)


def test_recheck_action_applies_mtns_final_status(admin_client, mtn_http, pending):
    mtn_says(mtn_http, pending)

    response = recheck(admin_client, pending)

    assert response.status_code == 200
    assert messages_of(response) == [
        f"Payment {pending.pk}: MTN reports SUCCESSFUL; it is now SUCCESSFUL."
    ]
    pending.refresh_from_db()
    assert pending.status == Status.SUCCESSFUL
    assert pending.mtn_financial_transaction_id == "123"
    event = AuditEvent.objects.get(object_id=str(pending.pk), action="payment.rechecked")
    assert (event.actor_type, event.actor_id) == ("staff", "admin")
    assert event.data == {"mtn_status": "SUCCESSFUL", "outcome": "applied"}
    assert MerchantDelivery.objects.filter(object_id=pending.pk).count() == 1
    assert len(mtn_calls(mtn_http, "requesttopay/")) == 1


def test_recheck_button_on_the_page(admin_client, mtn_http, pending):
    mtn_says(mtn_http, pending, status="FAILED", reason="APPROVAL_REJECTED")
    page = admin_client.get(reverse("admin:payments_payment_change", args=[pending.pk]))
    assert button_url(pending) in page.content.decode()

    response = admin_client.post(button_url(pending), follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "admin:payments_payment_change", args=[pending.pk]
    )
    assert messages_of(response) == [f"Payment {pending.pk}: MTN reports FAILED; it is now FAILED."]
    pending.refresh_from_db()
    assert pending.status == Status.FAILED
    assert pending.failure_code == "APPROVAL_REJECTED"
    assert AuditEvent.objects.filter(action="payment.rechecked").count() == 1
    # The new event is on the page the button returns to.
    assert "payment.rechecked" in response.content.decode()


def test_recheck_button_refuses_get(admin_client, pending):
    assert admin_client.get(button_url(pending)).status_code == 405
    assert AuditEvent.objects.filter(action="payment.rechecked").count() == 0


def test_recheck_when_mtn_does_not_know_the_payment_changes_nothing(
    admin_client, mtn_http, pending
):
    mtn_http.get(
        status_url(pending),
        status=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )
    before = Payment.objects.filter(pk=pending.pk).values().get()

    response = recheck(admin_client, pending)

    [message] = messages_of(response)
    assert message.startswith(f"Payment {pending.pk}: MTN could not be asked (RESOURCE_NOT_FOUND")
    assert message.endswith("Nothing changed.")
    assert Payment.objects.filter(pk=pending.pk).values().get() == before
    assert not MerchantDelivery.objects.filter(object_id=pending.pk).exists()
    event = AuditEvent.objects.get(action="payment.rechecked")
    assert event.data["error"] == "RESOURCE_NOT_FOUND"


def test_recheck_when_mtn_is_down_changes_nothing(admin_client, mtn_http, pending):
    mtn_http.get(status_url(pending), status=503, body="")

    response = recheck(admin_client, pending)

    [message] = messages_of(response)
    assert "MTN could not be asked" in message
    assert "HTTP 503" in message
    assert Payment.objects.get(pk=pending.pk).status == Status.PENDING


def test_recheck_of_a_final_payment_that_mtn_confirms(admin_client, mtn_http, pending):
    mtn_says(mtn_http, pending)
    recheck(admin_client, pending)

    response = recheck(admin_client, pending)

    assert messages_of(response) == [
        f"Payment {pending.pk}: MTN confirms SUCCESSFUL; nothing changed."
    ]
    assert AuditEvent.objects.filter(action="payment.succeeded").count() == 1


def test_recheck_with_a_different_amount_flags_for_review(admin_client, mtn_http, pending):
    mtn_says(mtn_http, pending, amount="1")

    response = recheck(admin_client, pending)

    [message] = messages_of(response)
    assert "flagged for review, still PENDING" in message
    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    assert pending.needs_review is True


def test_recheck_of_several_payments_gives_a_message_each(admin_client, mtn_http, pending, tenant):
    second = make_transfer(tenant, reference="second")
    mtn_says(mtn_http, pending)
    mtn_says(mtn_http, second, status="PENDING")

    response = recheck(admin_client, pending, second)

    assert sorted(messages_of(response)) == sorted(
        [
            f"Payment {pending.pk}: MTN reports SUCCESSFUL; it is now SUCCESSFUL.",
            f"Payment {second.pk}: MTN has no final status yet; still PENDING.",
        ]
    )


def test_recheck_refuses_too_many_rows_at_once(admin_client, mtn_http, tenant):
    payments = [
        make_transfer(tenant, reference=f"r{i}") for i in range(MAX_ROWS_PER_NETWORK_ACTION + 1)
    ]

    response = recheck(admin_client, *payments)

    [message] = messages_of(response)
    assert "Nothing was re-checked" in message
    assert mtn_calls(mtn_http, "requesttopay/") == []
    assert not AuditEvent.objects.filter(action="payment.rechecked").exists()


def test_staff_without_view_permission_cannot_recheck(client, django_user_model, pending):
    user = django_user_model.objects.create_user(username="nobody", is_staff=True)
    client.force_login(user)

    assert client.post(button_url(pending)).status_code == 403
    assert recheck(client, pending).status_code == 403
    assert not AuditEvent.objects.filter(action="payment.rechecked").exists()


def test_view_only_staff_may_not_recheck(viewer_client, mtn_http, pending):
    mtn_says(mtn_http, pending)

    assert viewer_client.post(button_url(pending)).status_code == 403
    assert (
        "Re-check status with MTN"
        not in viewer_client.get(
            reverse("admin:payments_payment_change", args=[pending.pk])
        ).content.decode()
    )

    assert not AuditEvent.objects.filter(action="payment.rechecked").exists()
    assert mtn_calls(mtn_http, "requesttopay/") == []
    assert Payment.objects.get(pk=pending.pk).status == Status.PENDING


def test_staff_with_the_recheck_permission_may_recheck(viewer_client, mtn_http, pending):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.get(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="recheck_transfer"))
    mtn_says(mtn_http, pending)

    viewer_client.post(button_url(pending))

    event = AuditEvent.objects.get(action="payment.rechecked")
    assert event.actor_id == "viewer"
    assert Payment.objects.get(pk=pending.pk).status == Status.SUCCESSFUL


def test_past_the_processs_share_a_recheck_says_so_and_asks_nobody(
    admin_client, mtn_http, pending, settings
):
    from gateway.shares import share_slot

    mtn_says(mtn_http, pending)
    settings.ADMIN_RECHECK_SLOTS = 1
    with share_slot("ADMIN_RECHECK_SLOTS") as taken:  # another re-check is waiting on MTN
        assert taken
        response = recheck(admin_client, pending)

    assert response.status_code == 200
    assert messages_of(response) == [
        "This server is already re-checking with MTN as much as it allows. "
        "Nothing was re-checked; try again in a moment."
    ]
    assert mtn_calls(mtn_http, "requesttopay/") == []
    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    assert not AuditEvent.objects.filter(action="payment.rechecked").exists()
