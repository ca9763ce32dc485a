"""The ledger in the admin: balances and entries read-only; adjustments only with the
dedicated permission, with a reason, audited."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from gateway.models import AuditEvent
from ledger.models import LedgerEntry, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_payment_settled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def funded(tenant):
    ledger_payment_settled(
        tenant_id=tenant.pk,
        currency="UGX",
        amount=Decimal(10000),
        fee=Decimal(150),
        source_id=uuid.uuid4(),
    )
    return tenant


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user("sam", password="pw", is_staff=True)
    for codename in codenames:
        app_label, name = codename.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=name)
        )
    client = Client()
    client.force_login(user)
    return client


def adjust_url(tenant) -> str:
    return reverse("admin:tenants_tenant_adjust_balance", args=[tenant.pk])


def change_url(tenant) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant.pk])


def snapshot() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        LedgerEntry.objects.count(),
        AuditEvent.objects.filter(action="ledger_adjustment").count(),
    )


def test_the_tenant_page_shows_balances_and_latest_transactions(admin_client, funded):
    response = admin_client.get(change_url(funded))

    content = response.content.decode()
    assert response.status_code == 200
    assert "<td>UGX</td><td>9850</td><td>0</td>" in content
    assert "<td>payment</td><td>UGX</td><td>10000</td><td>150</td><td>9850</td>" in content
    assert f"?tenant_id={funded.pk}" in content
    assert "Adjust balance" in content


def test_a_superuser_credits_a_balance_with_a_reason(admin_client, admin_user, funded):
    response = admin_client.post(
        adjust_url(funded),
        {"currency": "UGX", "amount": "5000", "reason": "pre-funding", "confirm": "Confirm"},
    )

    assert response.status_code == 302
    assert response["Location"] == change_url(funded)
    assert balance_get(tenant_id=funded.pk, currency="UGX").available == 14850
    posted = LedgerTransaction.objects.get(type="adjustment")
    assert posted.memo == "pre-funding"
    event = AuditEvent.objects.get(action="ledger_adjustment")
    assert (event.actor_type, event.actor_id, event.tenant_id) == (
        "staff",
        admin_user.username,
        funded.pk,
    )
    assert ledger_verify() == []


def test_staff_with_the_permission_may_adjust(funded):
    client = staff_client("ledger.adjust_balance", "tenants.view_tenant")

    page = client.get(change_url(funded))
    response = client.post(
        adjust_url(funded),
        {"currency": "UGX", "amount": "-850", "reason": "correction", "confirm": "Confirm"},
    )

    assert "Adjust balance" in page.content.decode()
    assert response.status_code == 302
    assert balance_get(tenant_id=funded.pk, currency="UGX").available == 9000
    assert AuditEvent.objects.get(action="ledger_adjustment").actor_id == "sam"


def test_staff_without_the_permission_are_refused_and_nothing_is_posted(funded):
    client = staff_client("tenants.view_tenant", "tenants.change_tenant")
    before = snapshot()

    page = client.get(change_url(funded))
    form = client.get(adjust_url(funded))
    response = client.post(
        adjust_url(funded),
        {"currency": "UGX", "amount": "5000", "reason": "pre-funding", "confirm": "Confirm"},
    )

    assert page.status_code == 200
    assert "Adjust balance" not in page.content.decode()
    assert (form.status_code, response.status_code) == (403, 403)
    assert snapshot() == before
    assert balance_get(tenant_id=funded.pk, currency="UGX").available == 9850


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"currency": "UGX", "amount": "-9851", "reason": "too much"}, "smaller than 9851"),
        ({"currency": "UGX", "amount": "1.5", "reason": "decimals"}, "at most 0 decimal"),
        ({"currency": "UGX", "amount": "0", "reason": "zero"}, "greater than zero"),
        ({"currency": "UGX", "amount": "1e3", "reason": "exponent"}, "a leading minus debits"),
        ({"currency": "UGX", "amount": "100", "reason": "   "}, "required"),
        ({"currency": "XYZ", "amount": "100", "reason": "currency"}, "valid choice"),
    ],
)
@pytest.mark.parametrize("step", ["review", "confirm"])
def test_a_refused_adjustment_shows_why_and_posts_nothing(
    admin_client, funded, data, message, step
):
    before = snapshot()

    response = admin_client.post(adjust_url(funded), {**data, step: "yes"})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert snapshot() == before
    assert balance_get(tenant_id=funded.pk, currency="UGX").available == 9850


def test_an_adjustment_is_confirmed_on_a_page_showing_the_balance_before_and_after(
    admin_client, funded
):
    before = snapshot()
    data = {"currency": "UGX", "amount": "-850", "reason": "fee correction"}

    review = admin_client.post(adjust_url(funded), data)

    content = review.content.decode()
    assert review.status_code == 200
    assert 'id="adjust-confirm"' in content
    assert '<div class="readonly" id="adjust-before">9850 UGX</div>' in content
    assert '<div class="readonly" id="adjust-after"><strong>9000 UGX</strong></div>' in content
    assert "Debit of 850 UGX" in content
    assert snapshot() == before  # nothing moves before the confirmation
    back = admin_client.post(adjust_url(funded), {**data, "edit": "Back"})
    assert 'id="adjust-form"' in back.content.decode()
    assert 'value="-850"' in back.content.decode()
    assert snapshot() == before

    done = admin_client.post(adjust_url(funded), {**data, "confirm": "Confirm debit"})

    assert done.status_code == 302
    assert balance_get(tenant_id=funded.pk, currency="UGX").available == 9000


def test_the_adjust_form_lines_its_fields_up_like_the_admins_own(admin_client, funded):
    content = admin_client.get(adjust_url(funded)).content.decode()

    for name in ("currency", "amount", "reason"):
        assert f'class="form-row field-{name}"' in content
    assert content.count('<div class="flex-container">') == 3
    # The help and the refusal for a malformed amount say the same about the sign.
    assert "a leading minus debits" in content


def test_the_adjust_form_for_an_unknown_tenant_is_404(admin_client, db):
    response = admin_client.get(reverse("admin:tenants_tenant_adjust_balance", args=[uuid.uuid4()]))

    assert response.status_code == 404


def test_ledger_pages_are_read_only(admin_client, funded):
    posted = LedgerTransaction.objects.get()
    pages = [
        reverse("admin:ledger_ledgeraccount_changelist"),
        reverse("admin:ledger_ledgertransaction_changelist") + f"?tenant_id={funded.pk}",
        reverse("admin:ledger_ledgertransaction_change", args=[posted.pk]),
        reverse("admin:ledger_ledgerentry_changelist"),
    ]

    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    detail = admin_client.get(pages[2]).content.decode()
    assert 'name="_save"' not in detail
    assert "9850" in detail  # the entries inline
    assert admin_client.get(reverse("admin:ledger_ledgertransaction_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:ledger_ledgertransaction_delete", args=[posted.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert LedgerTransaction.objects.count() == 1


def test_the_ledger_list_filters_by_tenant(admin_client, funded, other_tenant):
    ledger_payment_settled(
        tenant_id=other_tenant.pk,
        currency="UGX",
        amount=Decimal(77),
        fee=Decimal(0),
        source_id=uuid.uuid4(),
    )

    response = admin_client.get(
        reverse("admin:ledger_ledgertransaction_changelist") + f"?tenant_id={funded.pk}"
    )

    content = response.content.decode()
    assert "10000" in content
    assert ">77<" not in content
