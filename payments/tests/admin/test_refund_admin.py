"""Refunds in the admin: read-only pages with their trail, callbacks and deliveries, the
re-check with MTN, and a payment's page listing its refunds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from gateway.audit import Actor
from payments.models import Refund
from payments.services import refund_create, transfer_transition
from payments.states import Status
from payments.tests.admin.factories import make_transfer_with_history
from webhooks.models import MerchantDelivery

REFUNDS = reverse("admin:payments_refund_changelist")
MTN_BASE = "https://mtn.test"


def refund_of(payment: Any, amount: str = "500", reason: str = "damaged <b>box</b>") -> Refund:
    return refund_create(
        payment=payment, actor=Actor.system(), amount=Decimal(amount), reason=reason
    )


def change_url(obj: Any) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def test_a_refunds_page_shows_its_fields_trail_and_webhook(admin_client, paid):
    refund = refund_of(paid)
    transfer_transition(transfer=refund, target=Status.SUCCESSFUL, actor=Actor.mtn())

    listing = admin_client.get(REFUNDS)
    page = admin_client.get(change_url(refund))

    assert listing.status_code == 200
    assert str(refund.pk) in listing.content.decode()
    assert page.status_code == 200
    content = page.content.decode()
    for text in ("refund.created", "refund.succeeded", "500 UGX", change_url(paid)):
        assert text in content
    assert "damaged &lt;b&gt;box&lt;/b&gt;" in content  # the reason comes from outside
    delivery = MerchantDelivery.objects.get(object_type="refund")
    assert delivery.event_id in content
    assert "reference" not in page.context["adminform"].form.fields


def test_a_payments_page_lists_its_refunds(admin_client, paid):
    first = refund_of(paid, "500")
    second = refund_of(paid, "300")

    content = admin_client.get(change_url(paid)).content.decode()

    assert 'id="refunds"' in content
    assert content.index(str(first.pk)) < content.index(str(second.pk))
    assert change_url(first) in content
    assert "300 UGX" in content


def test_refunds_are_read_only(admin_client, paid):
    refund = refund_of(paid)

    response = admin_client.post(change_url(refund), {"amount": "1", "status": "FAILED"})

    assert response.status_code == 403
    refund.refresh_from_db()
    assert (refund.amount, refund.status) == (Decimal("500"), Status.PENDING)
    assert admin_client.get(reverse("admin:payments_refund_add")).status_code == 403


def test_a_refund_is_found_by_its_payments_id(admin_client, tenant, paid):
    refund = refund_of(paid)
    other = refund_of(make_transfer_with_history(tenant), "100")

    response = admin_client.get(REFUNDS, {"q": str(paid.pk)})

    found = {str(row.pk) for row in response.context["cl"].result_list}
    assert found == {str(refund.pk)}
    assert str(other.pk) not in found


def test_recheck_asks_mtns_refund_status_and_applies_it(admin_client, mtn_http, paid):
    refund = refund_of(paid)
    mtn_http.get(
        f"{MTN_BASE}/disbursement/v1_0/refund/{refund.mtn_reference_id}",
        json={
            "status": "FAILED",
            "reason": "NOT_ENOUGH_FUNDS",
            "amount": "500",
            "currency": "UGX",
            "externalId": str(refund.pk),
            "payee": {"partyIdType": "MSISDN", "partyId": refund.payer},
        },
    )
    button = reverse("admin:payments_refund_object_action", args=[refund.pk, "recheck_with_mtn"])

    response = admin_client.post(button, follow=True)

    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Refund {refund.pk}: MTN reports FAILED; it is now FAILED."
    ]
    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == (Status.FAILED, "NOT_ENOUGH_FUNDS")


def listed_refunds(response: Any) -> set[str]:
    return {str(row.pk) for row in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "term",
    [
        "{id_start}",  # the refund's id as the list shows it
        "{payment_start}",  # its payment's id, as the payment column shows it
        "{reference_start}",  # the start of its MTN reference
        "{payment_id}",  # its payment's whole id
        "{payment_digits}",  # four digits, as a person types them
    ],
)
def test_refund_search_by_an_ids_first_characters_finds_it(admin_client, paid, term):
    refund = refund_of(paid)
    term = term.format(
        id_start=str(refund.pk)[:8],
        payment_start=str(paid.pk)[:8],
        reference_start=str(refund.mtn_reference_id)[:8],
        payment_id=paid.pk,
        payment_digits=str(paid.pk)[:4],
    )

    response = admin_client.get(REFUNDS, {"q": term})

    assert response.status_code == 200
    assert listed_refunds(response) == {str(refund.pk)}, term


def test_refund_search_for_digits_that_start_no_id_finds_nothing(admin_client, paid):
    refund_of(paid)

    response = admin_client.get(REFUNDS, {"q": "2711"})

    assert response.status_code == 200
    assert listed_refunds(response) <= {
        str(r.pk) for r in Refund.objects.all() if "2711" in (str(r.pk)[:4], str(paid.pk)[:4])
    }
