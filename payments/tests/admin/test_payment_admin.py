"""The payments and payouts admin: lists, filters, search, the read-only page and its history."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gateway.audit import Actor
from gateway.models import AuditEvent
from mtn.accounts import mtn_account_set
from mtn.models import MtnAccount
from payments.models import Payment, Payout
from payments.states import Status
from payments.tests.admin.factories import (
    HOSTILE,
    make_payout_with_history,
    make_transfer,
)
from webhooks.models import MerchantDelivery, MtnCallback

PAYMENTS = reverse("admin:payments_payment_changelist")
PAYOUTS = reverse("admin:payments_payout_changelist")


def change_url(transfer: Any) -> str:
    opts = transfer._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[transfer.pk])


def listed_ids(response: Any) -> set[str]:
    return {str(row.pk) for row in response.context["cl"].result_list}


# --- lists --------------------------------------------------------------------------------


def test_payment_list_shows_the_columns(admin_client, paid):
    response = admin_client.get(PAYMENTS)

    assert response.status_code == 200
    assert listed_ids(response) == {str(paid.pk)}
    content = response.content.decode()
    for text in (str(paid.pk), "alice", "SUCCESSFUL", "1500 UGX", "256771234567", "order-1001"):
        assert text in content


def test_payout_list_and_page_load(admin_client, tenant):
    payout = make_payout_with_history(tenant)

    listing = admin_client.get(PAYOUTS)
    page = admin_client.get(change_url(payout))

    assert listing.status_code == 200
    assert listed_ids(listing) == {str(payout.pk)}
    assert "256779999999" in listing.content.decode()
    assert page.status_code == 200
    content = page.content.decode()
    assert "payout.created" in content
    assert "payout.succeeded" in content
    assert "payout.succeeded" in content  # the delivery's event type too
    assert MerchantDelivery.objects.get(object_id=payout.pk).event_id in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=SUCCESSFUL", "paid"),
        ("status__exact=PENDING", "pending"),
        ("currency=EUR", "pending"),
        ("needs_review__exact=1", "pending"),
        # A final status from MTN means MTN has the transaction: "paid" counts as submitted.
        ("submission=submitted", "paid"),
        ("submission=queued", "pending"),
    ],
)
def test_payment_list_filters(admin_client, paid, query, expected):
    pending = make_transfer(paid.tenant, currency="EUR", amount="12.50", reference="order-2")
    Payment.objects.filter(pk=pending.pk).update(needs_review=True)
    rows = {"paid": paid, "pending": pending}

    response = admin_client.get(f"{PAYMENTS}?{query}")

    assert response.status_code == 200
    assert listed_ids(response) == {str(rows[expected].pk)}


def _uganda_account(tenant: Any) -> None:
    """A tenant's own MTN Uganda account: its UGX payments go through it."""
    mtn_account_set(
        name="alice-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": "alice-sub",
                "api_user": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910",
                "api_key": "alice-key",
            }
        },
        base_url="https://mtn.test",
        tenant_slug=tenant.slug,
        actor=Actor.system(),
    )


def test_lists_show_and_filter_by_the_mtn_account(admin_client, paid):
    _uganda_account(paid.tenant)
    own = make_transfer(paid.tenant, reference="order-own")  # UGX: the tenant's own account
    payout = make_transfer(paid.tenant, model=Payout, reference="payout-own")

    everything = admin_client.get(PAYMENTS)
    through_own = admin_client.get(f"{PAYMENTS}?mtn_account__exact=alice-ug")
    through_default = admin_client.get(f"{PAYMENTS}?mtn_account__exact=default")
    payouts = admin_client.get(f"{PAYOUTS}?mtn_account__exact=alice-ug")

    assert (own.mtn_account, paid.mtn_account, payout.mtn_account) == (
        "alice-ug",
        "default",
        "alice-ug",
    )
    assert listed_ids(everything) == {str(paid.pk), str(own.pk)}
    assert listed_ids(through_own) == {str(own.pk)}
    assert listed_ids(through_default) == {str(paid.pk)}
    assert listed_ids(payouts) == {str(payout.pk)}
    content = everything.content.decode()
    assert '<td class="field-account_display">alice-ug</td>' in content
    assert '<td class="field-account_display">default</td>' in content
    assert "?mtn_account__exact=alice-ug" in content  # offered as a filter


def test_payment_page_links_its_mtn_account(admin_client, tenant):
    _uganda_account(tenant)
    own = make_transfer(tenant)
    account = MtnAccount.objects.get(name="alice-ug")

    content = admin_client.get(change_url(own)).content.decode()

    assert reverse("admin:mtn_mtnaccount_change", args=[account.pk]) in content
    assert "alice-key" not in content
    assert "alice-sub" not in content


def test_payment_list_filters_by_tenant(admin_client, paid, other_tenant):
    bobs = make_transfer(other_tenant)

    response = admin_client.get(f"{PAYMENTS}?tenant__id__exact={other_tenant.pk}")

    assert listed_ids(response) == {str(bobs.pk)}


def test_payment_list_date_hierarchy(admin_client, paid):
    created = paid.created_at
    response = admin_client.get(
        f"{PAYMENTS}?created_at__year={created.year}&created_at__month={created.month}"
        f"&created_at__day={created.day}"
    )
    elsewhere = admin_client.get(f"{PAYMENTS}?created_at__year={created.year - 1}")

    assert listed_ids(response) == {str(paid.pk)}
    assert listed_ids(elsewhere) == set()


@pytest.mark.parametrize(
    "term",
    [
        "{id}",
        "{id_upper}",
        "{mtn_reference_id}",
        "{id_start}",  # the first segment, as the list shows it
        "{id_start_upper}",
        "{id_start}-{id_second}",
        "{mtn_reference_id_start}",
        "771234567",  # part of the payer's number
        "+256771234567",  # as the API accepts it
        "+256 77 123 4567",  # as people write it
        "0771 234567",  # in national format, with the trunk 0
        "order-1001",
        "ORDER-10",  # part of the reference, any case
        "987654321",  # MTN's financial transaction id, whole
    ],
)
def test_payment_search_finds_it(admin_client, paid, term):
    other = make_transfer(paid.tenant, party="256700000000", reference="another")
    term = term.format(
        id=paid.pk,
        id_upper=str(paid.pk).upper(),
        id_start=str(paid.pk)[:8],
        id_start_upper=str(paid.pk)[:8].upper(),
        id_second=str(paid.pk)[9:13],
        mtn_reference_id=paid.mtn_reference_id,
        mtn_reference_id_start=str(paid.mtn_reference_id)[:8],
    )

    response = admin_client.get(PAYMENTS, {"q": term})

    assert response.status_code == 200
    assert listed_ids(response) == {str(paid.pk)}, term
    assert str(other.pk) not in listed_ids(response)


@pytest.mark.parametrize(
    "term", ["{other_start}", "nothing-like-this", str(uuid.uuid4()), "+256 70", "  "]
)
def test_payment_search_without_a_match(admin_client, paid, term):
    # An id prefix that is not this payment's: the same length, one digit changed.
    start = str(paid.pk)[:8]
    term = term.format(other_start=start[:-1] + ("0" if start[-1] != "0" else "1"))

    response = admin_client.get(PAYMENTS, {"q": term})

    assert response.status_code == 200
    expected = {str(paid.pk)} if not term.strip() else set()
    assert listed_ids(response) == expected


def test_payment_list_queries_do_not_grow_with_rows(admin_client, tenant, other_tenant):
    make_transfer(tenant)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(PAYMENTS)
    for index in range(6):
        make_transfer(other_tenant if index % 2 else tenant, reference=f"r-{index}")
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(PAYMENTS)

    assert len(listed_ids(response)) == 7
    assert len(many) == len(few)


# --- the page -----------------------------------------------------------------------------


def test_payment_page_shows_all_fields_and_hides_the_callback_token(admin_client, paid):
    response = admin_client.get(change_url(paid))

    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        str(paid.pk),
        str(paid.mtn_reference_id),
        "987654321",
        "256771234567",
        "order-1001",
        "Accepted by MTN, which then reported it SUCCESSFUL.",
        "MTN reference ID",
        "MTN financial transaction ID",
    ):
        assert text in content
    assert paid.callback_token not in content
    assert f"{paid.callback_token[:4]}… (hidden)" in content


def test_payment_page_shows_its_audit_trail_oldest_first(admin_client, paid):
    response = admin_client.get(change_url(paid))

    trail = [row.event.action for row in response.context["audit_trail"]]
    assert trail == ["payment.created", "payment.succeeded"]
    content = response.content.decode()
    assert content.index("payment.created") < content.index("payment.succeeded")
    assert "api_key:mgw_testkey0" in content
    assert "987654321" in content


def test_payment_page_shows_mtn_callbacks(admin_client, paid):
    callback = MtnCallback.objects.get(object_id=paid.pk)

    response = admin_client.get(change_url(paid))

    assert [row.callback.pk for row in response.context["mtn_callbacks"]] == [callback.pk]
    content = response.content.decode()
    assert "Per-payment URL" in content
    assert "Confirmed by MTN&#x27;s status endpoint." in content
    assert reverse("admin:webhooks_mtncallback_change", args=[callback.pk]) in content


def test_payment_page_shows_merchant_deliveries_and_their_attempts(admin_client, paid):
    delivery = MerchantDelivery.objects.get(object_id=paid.pk)

    response = admin_client.get(change_url(paid))

    [row] = response.context["merchant_deliveries"]
    assert row.delivery.pk == delivery.pk
    assert [attempt.status_code for attempt in row.attempts] == [500]
    content = response.content.decode()
    assert delivery.event_id in content
    assert "payment.succeeded" in content
    assert "merchant is down" in content
    assert reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk]) in content


def test_payment_page_escapes_untrusted_text(admin_client, paid):
    response = admin_client.get(change_url(paid))

    content = response.content.decode()
    assert HOSTILE not in content
    assert "&lt;script&gt;" in content


def test_payment_page_query_count_does_not_grow_with_history(admin_client, paid):
    with CaptureQueriesContext(connection) as before:
        admin_client.get(change_url(paid))
    delivery = MerchantDelivery.objects.get(object_id=paid.pk)
    for _ in range(3):
        delivery.attempts.create(attempted_at=delivery.created_at, status_code=502)
    with CaptureQueriesContext(connection) as after:
        admin_client.get(change_url(paid))

    assert len(after) == len(before)


def test_payment_page_for_an_unknown_id_redirects_with_a_message(admin_client, db):
    response = admin_client.get(
        reverse("admin:payments_payment_change", args=[uuid.uuid4()]), follow=True
    )

    assert response.status_code == 200
    assert "doesn’t exist" in response.content.decode()


# --- money is never edited by hand --------------------------------------------------------


def test_payment_cannot_be_changed(admin_client, paid):
    before = Payment.objects.filter(pk=paid.pk).values().get()
    events = AuditEvent.objects.count()

    response = admin_client.post(
        change_url(paid),
        {"status": "FAILED", "amount": "1", "currency": "EUR", "payer": "1", "needs_review": "on"},
    )

    assert response.status_code == 403
    assert Payment.objects.filter(pk=paid.pk).values().get() == before
    assert AuditEvent.objects.count() == events


def test_payment_page_has_no_save_or_delete_buttons(admin_client, paid):
    content = admin_client.get(change_url(paid)).content.decode()

    assert 'name="_save"' not in content
    assert "deletelink" not in content


def test_payment_cannot_be_deleted(admin_client, paid):
    delete_url = reverse("admin:payments_payment_delete", args=[paid.pk])

    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        PAYMENTS, {"action": "delete_selected", "_selected_action": [paid.pk], "post": "yes"}
    )
    assert response.status_code == 302  # back to the list: there is no such action here
    assert Payment.objects.filter(pk=paid.pk).exists()


def test_payments_cannot_be_added(admin_client, db):
    assert admin_client.get(reverse("admin:payments_payment_add")).status_code == 403
    assert admin_client.post(reverse("admin:payments_payout_add"), {}).status_code == 403
    assert Payment.objects.count() == 0
    assert Payout.objects.count() == 0


def test_view_only_staff_sees_payments_but_cannot_change_them(viewer_client, paid):
    assert viewer_client.get(PAYMENTS).status_code == 200
    page = viewer_client.get(change_url(paid))
    assert page.status_code == 200
    assert "payment.created" in page.content.decode()
    assert viewer_client.post(change_url(paid), {"status": "FAILED"}).status_code == 403
    assert Payment.objects.get(pk=paid.pk).status == Status.SUCCESSFUL


def test_staff_without_permission_cannot_see_payments(client, django_user_model, paid):
    user = django_user_model.objects.create_user(username="nobody", is_staff=True)
    client.force_login(user)

    assert client.get(PAYMENTS).status_code == 403
    assert client.get(change_url(paid)).status_code == 403


def test_lists_leave_out_the_account_column_while_default_is_the_only_account(admin_client, paid):
    content = admin_client.get(PAYMENTS).content.decode()

    assert str(paid.pk)[:8] in content
    assert "field-account_display" not in content
