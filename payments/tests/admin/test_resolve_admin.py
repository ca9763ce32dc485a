"""Resolving a flagged transfer in the admin: Money operators only, with a reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from gateway.audit import Actor
from gateway.models import AuditEvent
from gateway.staff_groups import MONEY_OPERATORS, SUPPORT
from ledger.models import LedgerTransaction
from mtn.client import parse_transaction_status
from payments import services
from payments.models import Payout
from payments.states import Status
from payments.tests.services.conftest import mtn_status_body, submitted
from webhooks.models import MerchantDelivery

pytestmark = pytest.mark.django_db


def member_of(django_user_model: Any, group_name: str) -> Client:
    user = django_user_model.objects.create_user(
        username=group_name.lower().replace(" ", "-"), password="not-used", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group_name))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def flagged(tenant) -> Payout:
    """A SUCCESSFUL payout that MTN now reports FAILED."""
    payout = submitted(tenant, kind="payout", amount="700")
    for status in ("SUCCESSFUL", "FAILED"):
        fresh = Payout.objects.select_related("tenant").get(pk=payout.pk)
        services.transfer_apply_mtn_status(
            transfer=fresh,
            mtn_status=parse_transaction_status(mtn_status_body(fresh, status)),
            source="test",
        )
    payout.refresh_from_db()
    assert payout.needs_review
    return payout


def resolve_url(payout: Payout) -> str:
    return reverse("admin:payments_payout_resolve", args=[payout.pk])


def test_support_may_see_the_flag_but_not_resolve(django_user_model, flagged):
    support = member_of(django_user_model, SUPPORT)

    page = support.get(reverse("admin:payments_payout_change", args=[flagged.pk]))
    refused = support.post(resolve_url(flagged), {"decision": "accept_mtn", "reason": "x"})

    assert page.status_code == 200
    assert b"MTN reports FAILED; the payout is SUCCESSFUL" in page.content
    assert refused.status_code == 403
    flagged.refresh_from_db()
    assert (flagged.status, flagged.needs_review) == (Status.SUCCESSFUL, True)
    assert not LedgerTransaction.objects.filter(type="correction").exists()


def test_a_money_operator_accepts_mtns_status_with_a_reason(django_user_model, flagged, tenant):
    operator = member_of(django_user_model, MONEY_OPERATORS)

    form = operator.get(resolve_url(flagged))
    without_reason = operator.post(resolve_url(flagged), {"decision": "accept_mtn", "reason": ""})
    done = operator.post(
        resolve_url(flagged), {"decision": "accept_mtn", "reason": "MTN reversed it"}
    )

    assert form.status_code == 200
    assert b"Accept MTN" in form.content
    assert without_reason.status_code == 200  # the form again, nothing done
    assert done.status_code == 302
    flagged.refresh_from_db()
    assert (flagged.status, flagged.needs_review) == (Status.FAILED, False)
    correction = LedgerTransaction.objects.get(type="correction")
    assert correction.net == Decimal("700")
    event = AuditEvent.objects.get(action="payout.corrected")
    assert (event.actor_id, event.data["reason"]) == ("money-operators", "MTN reversed it")
    assert MerchantDelivery.objects.filter(event_type="payout.failed").count() == 1


def test_keep_in_the_admin_clears_the_flag_only(django_user_model, flagged):
    operator = member_of(django_user_model, MONEY_OPERATORS)

    operator.post(resolve_url(flagged), {"decision": "keep", "reason": "MTN is wrong"})

    flagged.refresh_from_db()
    assert (flagged.status, flagged.needs_review) == (Status.SUCCESSFUL, False)
    assert not LedgerTransaction.objects.filter(type="correction").exists()
    services.transfer_resolve(
        transfer=flagged, decision=services.ACCEPT_MTN, reason="late", actor=Actor.system()
    )
    assert Payout.objects.get(pk=flagged.pk).status == Status.SUCCESSFUL  # not flagged: no-op
