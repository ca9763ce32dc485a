"""Staff groups: "Support" looks, "Money operators" also act (re-check, redeliver, adjust)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from conftest import mtn_calls
from gateway.models import AuditEvent
from gateway.staff_groups import MONEY_OPERATORS, SUPPORT, staff_groups_sync
from payments.models import Payment
from payments.states import Status
from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_transfer,
    make_transfer_with_history,
)
from webhooks.models import MerchantDelivery

pytestmark = pytest.mark.django_db


def codenames(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def member_of(django_user_model: Any, group_name: str) -> Client:
    user = django_user_model.objects.create_user(
        username=group_name.lower().replace(" ", "-"), password="not-used", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group_name))
    client = Client()
    client.force_login(user)
    return client


def test_migrate_creates_both_groups():
    support = codenames(SUPPORT)
    operators = codenames(MONEY_OPERATORS)

    for view in (
        "payments.view_payment",
        "payments.view_payout",
        "webhooks.view_merchantdelivery",
        "webhooks.view_mtncallback",
        "gateway.view_auditevent",
        "tenants.view_tenant",
    ):
        assert view in support
        assert view in operators
    assert "payments.recheck_transfer" in operators
    assert "webhooks.redeliver_merchantdelivery" in operators
    assert "payments.resolve_review" in operators


def test_support_may_only_look():
    support = codenames(SUPPORT)

    assert all(".view_" in name for name in support), support
    assert "payments.recheck_transfer" not in support
    assert "webhooks.redeliver_merchantdelivery" not in support
    assert "ledger.adjust_balance" not in support
    assert "payments.resolve_review" not in support


def test_operators_may_adjust_balances_once_the_ledger_defines_it():
    exists = Permission.objects.filter(
        content_type__app_label="ledger", codename="adjust_balance"
    ).exists()

    assert ("ledger.adjust_balance" in codenames(MONEY_OPERATORS)) == exists


def test_sync_is_idempotent_and_keeps_what_was_granted_by_hand():
    extra = Permission.objects.get(codename="change_tenant")
    Group.objects.get(name=SUPPORT).permissions.add(extra)
    before = codenames(MONEY_OPERATORS)

    staff_groups_sync()
    call_command("setup_staff_groups", stdout=StringIO())

    assert Group.objects.filter(name__in=[SUPPORT, MONEY_OPERATORS]).count() == 2
    assert codenames(MONEY_OPERATORS) == before
    assert "tenants.change_tenant" in codenames(SUPPORT)


def test_support_sees_payments_but_cannot_recheck(django_user_model, tenant, mtn_http):
    pending = make_transfer(tenant)
    client = member_of(django_user_model, SUPPORT)
    page = reverse("admin:payments_payment_change", args=[pending.pk])
    button = reverse("admin:payments_payment_object_action", args=[pending.pk, "recheck_with_mtn"])

    assert client.get(reverse("admin:payments_payment_changelist")).status_code == 200
    assert "Re-check status with MTN" not in client.get(page).content.decode()
    assert client.post(button).status_code == 403

    assert not AuditEvent.objects.filter(action="payment.rechecked").exists()
    assert mtn_calls(mtn_http, "requesttopay/") == []
    assert Payment.objects.get(pk=pending.pk).status == Status.PENDING


def test_support_cannot_redeliver(django_user_model, tenant):
    paid = make_transfer_with_history(tenant)
    delivery = MerchantDelivery.objects.get(object_id=paid.pk)
    attempts = delivery.attempts.count()
    client = member_of(django_user_model, SUPPORT)
    button = reverse(
        "admin:webhooks_merchantdelivery_object_action", args=[delivery.pk, "redeliver"]
    )

    assert client.post(button).status_code == 403
    assert delivery.attempts.count() == attempts
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()


def test_operators_see_both_buttons(django_user_model, tenant):
    paid = make_transfer_with_history(tenant)
    delivery = MerchantDelivery.objects.get(object_id=paid.pk)
    client = member_of(django_user_model, MONEY_OPERATORS)

    payment_page = client.get(reverse("admin:payments_payment_change", args=[paid.pk]))
    delivery_page = client.get(
        reverse("admin:webhooks_merchantdelivery_change", args=[delivery.pk])
    )

    assert "Re-check status with MTN" in payment_page.content.decode()
    assert "Redeliver webhook" in delivery_page.content.decode()


def test_neither_group_may_edit_money_or_tenants(django_user_model, tenant):
    paid = make_transfer_with_history(tenant)
    for group in (SUPPORT, MONEY_OPERATORS):
        client = member_of(django_user_model, group)
        change = reverse("admin:payments_payment_change", args=[paid.pk])

        assert client.post(change, {"status": "FAILED"}).status_code == 403
        assert client.get(reverse("admin:tenants_tenant_add")).status_code == 403
    assert Payment.objects.get(pk=paid.pk).status == Status.SUCCESSFUL
