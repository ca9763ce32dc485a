"""What a browser meets around the admin: "View site", the favicon, a plain 404, one time format,
labels in words."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_transfer,
    make_transfer_with_history,
)
from webhooks.models import MerchantDelivery, MtnCallback

pytestmark = pytest.mark.django_db

TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC"


def test_view_site_points_at_the_api_docs(admin_client):
    content = admin_client.get("/admin/").content.decode()

    assert '<a href="/api/docs/">View site</a>' in content


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content


def test_admin_pages_link_the_favicon(admin_client):
    assert 'rel="icon"' in admin_client.get("/admin/").content.decode()


@pytest.mark.parametrize("path", ["/", "/nothing-here", "/admin/nothing-here/", "/api"])
def test_unknown_pages_are_a_plain_404_even_with_debug(client, settings, admin_user, path):
    settings.DEBUG = True
    client.force_login(admin_user)

    response = client.get(path)

    assert response.status_code == 404
    content = response.content.decode()
    assert "Nothing here" in content
    # DEBUG's page would list the URL patterns.
    assert "URLconf" not in content
    assert "healthz" not in content
    assert "api/schema" not in content


def test_the_bare_admin_address_leads_to_the_admin(client):
    response = client.get("/admin")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_unknown_api_paths_keep_the_json_error(client, settings):
    settings.DEBUG = True

    response = client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert json.loads(response.content)["error"]["code"] == "not_found"


def test_one_time_format_in_list_page_trail_and_attempts(admin_client, tenant):
    paid = make_transfer_with_history(tenant)
    delivery = MerchantDelivery.objects.get(object_id=paid.pk)

    listing = admin_client.get(reverse("admin:payments_payment_changelist")).content.decode()
    page = admin_client.get(
        reverse("admin:payments_payment_change", args=[paid.pk])
    ).content.decode()
    delivery_page = admin_client.get(
        reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk])
    ).content.decode()

    assert re.search(TIME, listing)
    trail = page.split('id="audit-trail"')[1].split("</table>")[0]
    assert re.search(f"<td>{TIME}</td>", trail)
    attempts = page.split('class="gateway-attempts"')[1]
    assert re.search(f"<td>{TIME}</td>", attempts)
    assert re.search(TIME, delivery_page.split("attempted_at")[-1])
    for content in (listing, page, delivery_page):
        assert not re.search(r"\b(a|p)\.m\.", content)  # no "9:50 a.m."


def test_payment_list_is_quiet_on_normal_rows_and_says_why_a_row_failed(admin_client, tenant):
    from payments.models import Payment

    normal = make_transfer(tenant, reference="normal")
    flagged = make_transfer(tenant, reference="flagged")
    Payment.objects.filter(pk=flagged.pk).update(
        needs_review=True,
        status="FAILED",
        failure_code="APPROVAL_REJECTED",
        failure_message="The payer declined the request.",
        submission="submitted",
    )

    response = admin_client.get(reverse("admin:payments_payment_changelist"))

    content = response.content.decode()
    assert content.count(">needs review<") == 1
    assert "icon-no.svg" not in content
    assert "icon-yes.svg" not in content
    assert "A callback disagreed with this record" not in content
    assert 'title="The payer declined the request.">APPROVAL_REJECTED<' in content
    assert "failed at MTN" in content
    assert "Submitted: MTN accepted the reference" not in content
    # Short ids, the whole id on hover.
    short = str(normal.pk).split("-")[0]
    assert f'<span class="gateway-id" title="{normal.pk}">{short}</span>' in content


def test_callback_page_labels(admin_client, tenant):
    paid = make_transfer_with_history(tenant)
    token_callback = MtnCallback.objects.get(object_id=paid.pk)
    signed = MtnCallback.objects.create(
        door=MtnCallback.Door.SIGNED,
        method="POST",
        headers={},
        raw_body="{}",
        remote_addr="203.0.113.9",
        signature_valid=True,
        reported_status="SUCCESSFUL",
        confirmed_status="SUCCESSFUL",
        outcome=MtnCallback.Outcome.APPLIED,
    )

    signed_page = admin_client.get(
        reverse("admin:webhooks_mtncallback_change", args=[signed.pk])
    ).content.decode()
    token_page = admin_client.get(
        reverse("admin:webhooks_mtncallback_change", args=[token_callback.pk])
    ).content.decode()

    assert "Remote address" in signed_page
    assert "Remote addr:" not in signed_page
    assert "Valid: X-Signature-256 matched" in signed_page
    assert "icon-unknown.svg" not in signed_page
    assert "Yes: MTN&#x27;s status endpoint says SUCCESSFUL." in signed_page
    assert "Confirm attempts" not in signed_page
    assert "Not signed: the per-payment URL" in token_page


def test_delivery_page_labels_and_title(admin_client, tenant, other_tenant):
    from payments.tests.admin.factories import make_payout_with_history

    payout = make_payout_with_history(other_tenant)  # bob: no webhook URL
    delivery = MerchantDelivery.objects.get(object_id=payout.pk)

    content = admin_client.get(
        reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk])
    ).content.decode()

    assert "(no_endpoint)" not in content
    assert "Not sent: the tenant has no webhook URL" in content
    assert ">URL:<" in content
    assert "Url" not in content
    payment_page = admin_client.get(
        reverse("admin:payments_payout_change", args=[payout.pk])
    ).content.decode()
    assert "MTN reference ID" in payment_page
    assert "Mtn reference id" not in payment_page


def test_an_unfiltered_list_does_not_offer_to_show_all(admin_client, tenant):
    make_transfer(tenant)
    make_transfer(tenant, reference="second")

    unfiltered = admin_client.get(reverse("admin:payments_payment_changelist")).content.decode()
    searched = admin_client.get(
        reverse("admin:payments_payment_changelist"), {"q": "second"}
    ).content.decode()

    assert "Show all" not in unfiltered
    assert "1 result (" in searched
    assert "Show all" in searched


def test_the_two_factor_devices_have_a_heading_staff_can_read(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()

    assert "Two-factor devices" in content
    assert "OTP_TOTP" not in content
