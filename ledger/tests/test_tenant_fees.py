"""A tenant's collection fee: create_tenant --collection-fee-percent, the admin, the model."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse

from gateway.models import AuditEvent
from tenants.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def create_tenant(*args: str) -> dict:
    out = StringIO()
    call_command("create_tenant", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def test_a_new_tenant_has_no_fee():
    create_tenant("acme", "--name", "Acme")

    assert Tenant.objects.get(slug="acme").collection_fee_percent == 0


@pytest.mark.parametrize(
    ("raw", "stored"), [("1.5", "1.50"), ("0", "0"), ("100", "100"), ("2.25", "2.25")]
)
def test_create_tenant_stores_the_fee_percent(raw, stored):
    printed = create_tenant("acme", "--name", "Acme", "--collection-fee-percent", raw)

    assert set(printed) == {"tenant", "api_key", "webhook_secret"}
    assert Tenant.objects.get(slug="acme").collection_fee_percent == Decimal(stored)


@pytest.mark.parametrize(
    "raw", ["-1", "100.01", "101", "1.234", "abc", "", "NaN", "Infinity", "1e1", "+5", " ", "5%"]
)
def test_a_bad_fee_percent_exits_non_zero_and_creates_nothing(raw):
    with pytest.raises(CommandError, match="collection-fee-percent"):
        create_tenant("acme", "--name", "Acme", "--collection-fee-percent", raw)

    assert not Tenant.objects.exists()
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.exists()


def test_the_database_refuses_a_fee_over_one_hundred(tenant):
    with pytest.raises(IntegrityError), transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(collection_fee_percent=Decimal("100.5"))

    tenant.refresh_from_db()
    assert tenant.collection_fee_percent == 0


def _change_form(tenant: Tenant, **overrides: str) -> dict[str, str]:
    data = {
        "name": tenant.name,
        "is_active": "on",
        "webhook_url": tenant.webhook_url,
        "rate_limit": tenant.rate_limit,
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value != ""}


def test_staff_edit_the_fee_in_the_admin_and_it_is_audited(admin_client, tenant):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    response = admin_client.post(url, _change_form(tenant, collection_fee_percent="2.5"))

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.collection_fee_percent == Decimal("2.50")
    event = AuditEvent.objects.get(action="tenant.updated")
    assert event.data["fields"] == ["collection_fee_percent"]
    assert (event.data["from"], event.data["to"]) == (
        {"collection_fee_percent": "0.00"},
        {"collection_fee_percent": "2.5"},
    )


@pytest.mark.parametrize("value", ["-1", "100.01", "1.234", "x"])
def test_an_invalid_fee_in_the_admin_changes_nothing(admin_client, tenant, value):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    response = admin_client.post(url, _change_form(tenant, collection_fee_percent=value))

    assert response.status_code == 200  # the form again, with the error
    tenant.refresh_from_db()
    assert tenant.collection_fee_percent == 0
    assert not AuditEvent.objects.filter(action="tenant.updated").exists()


def test_a_form_without_the_fee_keeps_it(admin_client, tenant):
    Tenant.objects.filter(pk=tenant.pk).update(collection_fee_percent=Decimal(3))
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    response = admin_client.post(url, _change_form(tenant, name="Renamed"))

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.name, tenant.collection_fee_percent) == ("Renamed", 3)
    assert AuditEvent.objects.get(action="tenant.updated").data["fields"] == ["name"]


def test_the_fee_is_set_when_adding_a_tenant_in_the_admin(admin_client, db):
    response = admin_client.post(
        reverse("admin:tenants_tenant_add"),
        {"slug": "carol", "name": "Carol", "collection_fee_percent": "1.25"},
    )

    assert response.status_code == 302
    assert Tenant.objects.get(slug="carol").collection_fee_percent == Decimal("1.25")
