"""The admin's front page: today's and this week's numbers, errors, backlog and a chart."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from gateway.audit import Actor
from gateway.staff_groups import SUPPORT
from payments.models import Payment, Payout
from payments.services import transfer_transition
from payments.states import Status
from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_transfer,
)
from shell.dashboard import _nice_ceiling, bar_chart, dashboard_for
from webhooks.models import MerchantDelivery

pytestmark = pytest.mark.django_db


def fail(transfer: Any, code: str) -> None:
    transfer_transition(
        transfer=transfer,
        target=Status.FAILED,
        actor=Actor.mtn(),
        failure_code=code,
        failure_message="The payer declined.",
        data={},
    )


def succeed(transfer: Any) -> None:
    transfer_transition(
        transfer=transfer,
        target=Status.SUCCESSFUL,
        actor=Actor.mtn(),
        financial_transaction_id="1",
        data={},
    )


# The dashboard is asked "as of noon today", and the rows are moved to just before it, so
# that a test run across midnight counts the same.
NOON = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)


def backdate(transfer: Any, age: timedelta) -> None:
    type(transfer).objects.filter(pk=transfer.pk).update(created_at=NOON - age)


@pytest.fixture
def activity(tenant, other_tenant) -> dict[str, Any]:
    """Today: 2 successful, 1 failed, 1 pending payment; 10 days ago: 1 failed; 1 payout."""
    made = {
        "ok1": make_transfer(tenant, amount="1500"),
        "ok2": make_transfer(other_tenant, amount="2500"),
        "failed": make_transfer(tenant),
        "pending": make_transfer(tenant, reference="waiting"),
        "old": make_transfer(tenant),
        "payout": make_transfer(tenant, model=Payout, party="256779999999"),
    }
    succeed(made["ok1"])
    succeed(made["ok2"])
    fail(made["failed"], "APPROVAL_REJECTED")
    fail(made["old"], "PAYER_NOT_FOUND")
    for name, transfer in made.items():
        backdate(transfer, timedelta(days=10) if name == "old" else timedelta(hours=1))
    fail(made["payout"], "NOT_ENOUGH_FUNDS")
    Payment.objects.filter(pk=made["pending"].pk).update(needs_review=True)
    return made


def test_dashboard_counts_today_and_this_week_by_status(admin_user, activity):
    board = dashboard_for(user=admin_user, now=NOON)

    payments, payouts = board.kinds[:2]
    assert payments.label == "payments"
    assert payments.today == {"SUCCESSFUL": 2, "FAILED": 1, "PENDING": 1}
    assert payments.week_total == 4  # the one from 10 days ago is only in the chart
    assert payments.success_rate == "66.7%"
    assert payments.needs_review == 1
    assert payments.succeeded_today_text == "4000 UGX"
    assert payouts.today == {"SUCCESSFUL": 0, "FAILED": 1, "PENDING": 0}
    assert payouts.success_rate == "0.0%"
    assert sum(sum(day.values()) for day in payments.per_day.values()) == 5


def test_dashboard_lists_mtn_errors_by_code(admin_user, activity):
    board = dashboard_for(user=admin_user, now=NOON)

    errors = {error.code: error.counts for error in board.errors}
    # Columns: payments, payouts, refunds.
    assert errors == {"APPROVAL_REJECTED": [1, 0, 0], "NOT_ENOUGH_FUNDS": [0, 1, 0]}


def test_dashboard_shows_the_oldest_pending_payment_and_the_backlog(admin_user, activity):
    board = dashboard_for(user=admin_user, now=NOON)

    assert board.kinds[0].oldest_pending.pk == activity["pending"].pk
    assert board.kinds[1].oldest_pending is None
    # Alice has a webhook URL: each final payment and payout left a delivery to make.
    waiting = MerchantDelivery.objects.filter(next_attempt_at__isnull=False).count()
    assert waiting > 0
    assert board.backlog.waiting == waiting
    assert board.callbacks_waiting == 0


def test_front_page_renders_the_dashboard_with_charts(admin_client, activity):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="dashboard"' in content
    assert "APPROVAL_REJECTED" in content
    assert content.count('<svg class="gateway-chart"') == 3  # payments, payouts, refunds
    assert 'data-status="SUCCESSFUL"' in content
    assert f'title="{activity["pending"].pk}' in content  # the oldest pending one, linked
    # Nothing is fetched from another host: no script, image or style from elsewhere.
    assert not re.search(r"""(src|href)=["']https?://""", content)


def test_staff_who_may_see_nothing_get_no_dashboard(client, django_user_model, activity):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert 'id="dashboard"' not in response.content.decode()
    assert dashboard_for(user=user, now=timezone.now()) is None


def test_support_group_sees_the_dashboard(django_user_model, activity):
    user = django_user_model.objects.create_user("helper", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    client = Client()
    client.force_login(user)

    content = client.get("/admin/").content.decode()

    assert 'id="card-payments"' in content
    assert 'id="card-waiting"' in content


def test_chart_axis_uses_round_numbers_and_escapes_nothing_unsafe():
    assert [_nice_ceiling(n) for n in (1, 3, 7, 11, 40, 120)] == [1, 5, 10, 20, 50, 200]
    day = timezone.now().date()

    svg = str(bar_chart("payments", [day], {day: {"SUCCESSFUL": 3, "FAILED": 1}}))

    assert svg.count("<rect") == 2
    assert f"<title>{day.isoformat()}: 3 successful</title>" in svg


def test_dashboard_counts_every_flagged_transfer_however_old_and_links_to_them(
    admin_client, admin_user, activity
):
    # MTN contradicted a payment final for months: the late contradiction must still show.
    Payment.objects.filter(pk=activity["old"].pk).update(needs_review=True)
    backdate(activity["old"], timedelta(days=120))

    board = dashboard_for(user=admin_user, now=NOON)
    page = admin_client.get("/admin/")

    assert board.kinds[0].needs_review == 2
    assert b"?needs_review__exact=1" in page.content
    assert b"2 need review" in page.content
