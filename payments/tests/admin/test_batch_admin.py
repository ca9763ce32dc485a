"""The payout batch pages: progress in the list, the items page by page, the results CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.staff_groups import SUPPORT
from payments.models import Payout, PayoutBatch
from payments.services import transfer_transition
from payments.services.batches import BatchItem, BatchRequest, payout_batch_create
from payments.states import Status

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/payments/payoutbatch/"


def make_batch(tenant: Any, count: int = 60, *, failed: int = 2, succeeded: int = 3) -> PayoutBatch:
    fund_tenant(tenant, "UGX", "10000000")
    request = BatchRequest(
        currency="UGX",
        reference="payroll-2026-12",
        description="December salaries",
        items=[
            BatchItem(payee=f"2567720{n:05d}", amount=Decimal(1000 + n), reference=f"emp-{n:03d}")
            for n in range(count)
        ],
    )
    batch = payout_batch_create(tenant=tenant, actor=Actor.system(), request=request)
    items = list(Payout.objects.filter(batch=batch).order_by("batch_index"))
    for payout in items[:failed]:
        transfer_transition(
            transfer=payout, target=Status.FAILED, actor=Actor.mtn(), failure_code="PAYEE_NOT_FOUND"
        )
    for payout in items[failed : failed + succeeded]:
        transfer_transition(transfer=payout, target=Status.SUCCESSFUL, actor=Actor.mtn())
    return PayoutBatch.objects.get(pk=batch.pk)


@pytest.fixture
def support_client(django_user_model: Any) -> Client:
    """A member of Support: views everything, changes nothing."""
    user = django_user_model.objects.create_user(
        username="support", password="not-a-real-password", is_staff=True
    )
    user.groups.add(Group.objects.get(name=SUPPORT))
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_each_batchs_progress(support_client, tenant):
    make_batch(tenant)

    page = support_client.get(LIST_URL)

    assert page.status_code == 200
    text = page.content.decode()
    assert "5/60 done" in text
    assert "2 failed" in text
    assert "payroll-2026-12" in text


def test_the_batch_page_lists_its_payouts_a_page_at_a_time(support_client, tenant):
    batch = make_batch(tenant)
    url = f"{LIST_URL}{batch.pk}/change/"

    first = support_client.get(url).content.decode()
    second = support_client.get(f"{url}?items_page=2").content.decode()
    failed = support_client.get(f"{url}?items_status=FAILED").content.decode()

    assert "emp-000" in first
    assert "emp-049" in first
    assert "emp-050" not in first
    assert "Page 1 of 2 (60 payouts)" in first
    assert "emp-050" in second
    assert "emp-000" not in second
    assert "emp-000" in failed
    assert "emp-002" not in failed
    assert "Page 1 of 1 (2 payouts)" in failed
    assert "Download results (CSV)" in first


def test_download_results_is_the_csv_report(support_client, tenant):
    batch = make_batch(tenant, count=4, failed=1, succeeded=1)

    response = support_client.get(f"{LIST_URL}{batch.pk}/results.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "payee", "amount"]
    assert [(row[4], row[5], row[6]) for row in rows[1:]] == [
        ("emp-000", "FAILED", "PAYEE_NOT_FOUND"),
        ("emp-001", "SUCCESSFUL", ""),
        ("emp-002", "PENDING", ""),
        ("emp-003", "PENDING", ""),
    ]


def test_a_payout_links_to_its_batch(support_client, tenant):
    batch = make_batch(tenant, count=2, failed=0, succeeded=0)
    payout = Payout.objects.filter(batch=batch).first()

    page = support_client.get(f"/admin/payments/payout/{payout.pk}/change/").content.decode()

    assert f"/admin/payments/payoutbatch/{batch.pk}/change/" in page


def test_a_batch_cannot_be_added_changed_or_deleted(support_client, admin_client, tenant):
    batch = make_batch(tenant, count=1, failed=0, succeeded=0)

    assert admin_client.get(f"{LIST_URL}add/").status_code == 403
    assert admin_client.post(f"{LIST_URL}{batch.pk}/delete/").status_code == 403
    assert support_client.get(f"{LIST_URL}{batch.pk}/results.csv").status_code == 200
    assert PayoutBatch.objects.count() == 1


def test_staff_without_the_view_permission_get_no_results(viewer_client, tenant):
    batch = make_batch(tenant, count=1, failed=0, succeeded=0)

    assert viewer_client.get(f"{LIST_URL}{batch.pk}/results.csv").status_code == 403


def test_the_batch_page_shows_its_history_and_completion_webhook(support_client, tenant):
    batch = make_batch(tenant, count=2, failed=1, succeeded=1)

    page = support_client.get(f"{LIST_URL}{batch.pk}/change/").content.decode()

    assert "payout_batch.created" in page
    assert "payout_batch.completed" in page
    assert page.count("payout_batch.completed") >= 2  # the audit event and the webhook
