"""Every admin page a Support member can reach opens, and none lets them make the gateway call
MTN or move money (issue 19 finding 5; contract: Admin console).

The console is walked as a Support member would click through it: from the front page, every
link inside /admin/ (lists, filters, searches, objects, their history), with a row of every
kind in the database. MTN and merchants are stubbed so that any call would be seen.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
import responses
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from conftest import fund_tenant
from gateway.audit import Actor
from gateway.staff_groups import SUPPORT
from mtn.accounts import mtn_account_set
from payments.services import refund_create
from payments.tests.admin.factories import (
    fast_password_hashing,  # noqa: F401 - autouse
    make_payout_with_history,
    make_transfer_with_history,
)

pytestmark = pytest.mark.django_db

QUERY_VARIANTS_PER_PAGE = 4  # filter and sort links: a few per page, not every combination
NEVER_FOLLOW = ("/admin/logout/",)


@pytest.fixture
def everything(tenant: Any, other_tenant: Any) -> dict[str, Any]:
    """A row of every kind the console shows."""
    fund_tenant(tenant)
    paid = make_transfer_with_history(tenant)
    payout = make_payout_with_history(tenant)
    refund = refund_create(
        payment=paid, actor=Actor.system(), amount=Decimal("500"), reason="damaged box"
    )
    account = mtn_account_set(
        name="ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "collection": {
                "subscription_key": "support-test-sub",
                "api_user": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
                "api_key": "support-test-key",
            }
        },
        base_url="https://proxy.momoapi.mtn.com",
        tenant_slug=tenant.slug,
        actor=Actor.system(),
    )
    return {"payment": paid, "payout": payout, "refund": refund, "account": account}


@pytest.fixture
def support(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("support", password="unused", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def outside() -> Any:
    """Every HTTP call the gateway would make (MTN, merchants) is recorded, none answered."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def links(html: str, page: str) -> list[str]:
    """The admin links of a page; a filter's or sort's "?…" is relative to the page."""
    found = []
    for href in re.findall(r'href="([^"#]*)"', html):
        href = unescape(href)
        if href.startswith("?"):
            href = page.partition("?")[0] + href
        if href.startswith("/admin/"):
            found.append(href)
    return found


def walk(client: Client) -> dict[str, int]:
    """GET every admin page reachable by links from the front page; url -> status."""
    seen: dict[str, int] = {}
    variants: Counter[str] = Counter()
    queue = deque(["/admin/"])
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for link in links(response.content.decode(), url):
            path, _, query = link.partition("?")
            if query.startswith("_changelist_filters="):
                link, query = path, ""  # the same page, remembering the list's filters
            if link in seen or link.startswith(NEVER_FOLLOW):
                continue
            if query:
                if variants[path] >= QUERY_VARIANTS_PER_PAGE:
                    continue
                variants[path] += 1
            queue.append(link)
    return seen


def test_every_page_support_can_reach_opens(support, everything, outside):
    seen = walk(support)

    broken = {url: status for url, status in seen.items() if status != 200}
    assert broken == {}
    # It really went everywhere: each kind's list and an object of each kind.
    for name in (
        "payments_payment",
        "payments_payout",
        "payments_refund",
        "mtn_mtnaccount",
        "webhooks_merchantdelivery",
        "webhooks_mtncallback",
        "tenants_tenant",
        "gateway_auditevent",
        "ledger_ledgerentry",
    ):
        assert reverse(f"admin:{name}_changelist") in seen, name
    for obj in everything.values():
        opts = obj._meta
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert change in seen, change
    assert len(outside.calls) == 0  # looking never calls MTN or a merchant


def test_support_has_no_action_that_calls_mtn_or_moves_money(support, everything, outside):
    request = support.get("/admin/").wsgi_request
    offered = {
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        for name in model_admin.get_actions(request)
    }
    assert offered == set()

    refused = []
    for model, model_admin in admin.site._registry.items():
        for action in getattr(model_admin, "object_actions", ()):
            obj = model.objects.first()
            if obj is None:
                continue
            opts = model._meta
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_object_action", args=[obj.pk, action]
            )
            refused.append((url, support.post(url).status_code))
    assert refused
    assert {status for _url, status in refused} == {403}, refused
    assert len(outside.calls) == 0
