"""The admin's dashboard: a fixed, small number of queries, each one able to use an index."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Payout
from payments.tests.admin.factories import make_transfer, make_transfer_with_history
from shell.dashboard import dashboard_for

pytestmark = pytest.mark.django_db


def refunds_exist() -> bool:
    try:
        apps.get_model("payments", "Refund")
    except LookupError:
        return False
    return True


def dashboard_queries(user) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        dashboard_for(user=user, now=timezone.now())
    return [query["sql"] for query in captured.captured_queries]


def test_dashboard_is_a_fixed_handful_of_queries(admin_user, tenant, other_tenant):
    make_transfer_with_history(tenant)
    few = dashboard_queries(admin_user)
    for index in range(6):
        make_transfer(other_tenant if index % 2 else tenant, reference=f"r-{index}")
        make_transfer(tenant, model=Payout, party="256779999999", reference=f"p-{index}")
    many = dashboard_queries(admin_user)

    # Per kind one grouped count and one count of those flagged for review, however old
    # (refunds too once they exist); the oldest pending payment and payout; the webhook
    # backlog; the MTN callbacks awaiting confirmation.
    expected = 8 + (2 if refunds_exist() else 0)
    assert len(few) == expected, few
    assert len(many) == len(few)


@pytest.mark.postgres
def test_dashboard_queries_can_all_use_an_index(admin_user, tenant):
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN plans are PostgreSQL's")
    make_transfer_with_history(tenant)
    sqls = dashboard_queries(admin_user)

    with connection.cursor() as cursor:
        # With sequential scans priced out, a plan still reading a whole table has no index
        # to use: that is what this catches (tiny test tables would otherwise be scanned).
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in sqls:
            cursor.execute(f"EXPLAIN {sql}")  # captured with its parameters in place
            plan = "\n".join(row[0] for row in cursor.fetchall())
            for table in ("payments_payment", "payments_payout", "webhooks_merchantdelivery"):
                assert f"Seq Scan on {table}" not in plan, f"{sql}\n{plan}"
