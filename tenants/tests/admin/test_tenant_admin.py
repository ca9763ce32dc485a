"""Tenants and API keys in the admin: creation through tenant_create, secrets shown once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from gateway.models import AuditEvent
from tenants.keys import hash_api_key
from tenants.models import ApiKey, Tenant

TENANTS = reverse("admin:tenants_tenant_changelist")
TENANT_ADD = reverse("admin:tenants_tenant_add")
KEYS = reverse("admin:tenants_apikey_changelist")
KEY_RE = re.compile(r"mgw_[A-Za-z0-9_-]{43}")
SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{44}")


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def api_status(raw_key: str, slug: str) -> int:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key, HTTP_X_TENANT_ID=slug)
    return client.get("/api/v1/payments").status_code


def tenant_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "slug": "carol",
        "name": "Carol Goods",
        "webhook_url": "https://carol.example.com/hooks",
        "rate_limit": "300/m",
    }
    data.update(overrides)
    return data


def change_form(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": tenant.name,
        "is_active": "on" if tenant.is_active else "",
        "webhook_url": tenant.webhook_url,
        "rate_limit": tenant.rate_limit,
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value != ""}


# --- adding a tenant ----------------------------------------------------------------------


def test_adding_a_tenant_shows_its_key_and_secret_once(admin_client, db):
    response = admin_client.post(TENANT_ADD, tenant_form(), follow=True)

    assert response.status_code == 200
    shown = " ".join(messages_of(response))
    [raw_key] = KEY_RE.findall(shown)
    [secret] = SECRET_RE.findall(shown)
    tenant = Tenant.objects.get(slug="carol")
    assert (tenant.name, tenant.webhook_url, tenant.rate_limit) == (
        "Carol Goods",
        "https://carol.example.com/hooks",
        "300/m",
    )
    assert tenant.is_active
    assert tenant.webhook_secret == secret
    # The key works on the API...
    assert api_status(raw_key, "carol") == 200
    # ...is stored only as prefix and hash...
    key = ApiKey.objects.get(tenant=tenant)
    assert key.key_hash == hash_api_key(raw_key)
    assert key.prefix == raw_key[:12]
    assert not LogEntry.objects.filter(change_message__contains=raw_key).exists()
    assert not AuditEvent.objects.filter(data__icontains=raw_key).exists()
    # ...and is not shown again.
    again = admin_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert raw_key not in again.content.decode()
    assert secret not in again.content.decode()
    assert messages_of(again) == []


def test_adding_a_tenant_goes_through_tenant_create(admin_client, db):
    admin_client.post(TENANT_ADD, tenant_form())

    tenant = Tenant.objects.get(slug="carol")
    events = AuditEvent.objects.filter(tenant=tenant).order_by("created_at", "id")
    assert [(e.action, e.actor_type, e.actor_id) for e in events] == [
        ("tenant.created", "staff", "admin"),
        ("api_key.created", "staff", "admin"),
    ]
    assert LogEntry.objects.get(object_id=str(tenant.pk)).is_addition()


def test_adding_a_tenant_with_a_taken_slug_changes_nothing(admin_client, tenant):
    tenants, keys = Tenant.objects.count(), ApiKey.objects.count()

    response = admin_client.post(TENANT_ADD, tenant_form(slug="alice"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["slug"]
    assert (Tenant.objects.count(), ApiKey.objects.count()) == (tenants, keys)


@pytest.mark.parametrize(
    ("field", "value"),
    [("slug", "Not A Slug"), ("rate_limit", "lots"), ("webhook_url", "not a url")],
)
def test_adding_a_tenant_with_an_invalid_field_changes_nothing(admin_client, db, field, value):
    response = admin_client.post(TENANT_ADD, tenant_form(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Tenant.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_slug_taken_between_form_and_create_is_reported(admin_client, db, monkeypatch):
    from tenants import admin as tenants_admin
    from tenants.services import TenantError

    def taken(**kwargs: Any) -> Any:
        raise TenantError("A tenant with slug 'carol' already exists.")

    monkeypatch.setattr(tenants_admin, "tenant_create", taken)

    response = admin_client.post(TENANT_ADD, tenant_form(), follow=True)

    assert response.redirect_chain[-1][0] == TENANT_ADD
    assert messages_of(response) == [
        "The tenant was not created: A tenant with slug 'carol' already exists."
    ]
    assert not Tenant.objects.exists()
    assert not LogEntry.objects.exists()


# --- changing a tenant --------------------------------------------------------------------


def test_changing_a_tenant_writes_tenant_updated(admin_client, tenant):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    secret = tenant.webhook_secret

    response = admin_client.post(
        url, change_form(tenant, name="Alice Stores", is_active="", rate_limit="60/m")
    )

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.name, tenant.is_active, tenant.rate_limit) == ("Alice Stores", False, "60/m")
    assert tenant.webhook_secret == secret
    event = AuditEvent.objects.get(action="tenant.updated")
    assert (event.actor_type, event.actor_id, event.tenant_id) == ("staff", "admin", tenant.pk)
    assert sorted(event.data["fields"]) == ["is_active", "name", "rate_limit"]
    assert event.data["from"]["name"] == "Alice Shop"
    assert event.data["to"]["is_active"] is False


def test_saving_an_unchanged_tenant_writes_no_event(admin_client, tenant):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    admin_client.post(url, change_form(tenant))

    assert not AuditEvent.objects.filter(action="tenant.updated").exists()


def test_slug_cannot_be_changed(admin_client, tenant):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])

    admin_client.post(url, change_form(tenant, slug="mallory", name="Alice 2"))

    tenant.refresh_from_db()
    assert (tenant.slug, tenant.name) == ("alice", "Alice 2")
    assert AuditEvent.objects.get(action="tenant.updated").data["fields"] == ["name"]


def test_tenant_page_shows_keys_but_no_secret(admin_client, alice):
    tenant = alice.tenant
    key = ApiKey.objects.get(tenant=tenant)

    response = admin_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert f"{key.prefix}…" in content
    assert reverse("admin:tenants_apikey_change", args=[key.pk]) in content
    assert tenant.webhook_secret not in content
    assert alice.api_key not in content
    assert "Issue a new API key" in content
    assert "Rotate webhook secret" in content


def test_tenant_list_and_search(admin_client, tenant, other_tenant):
    listing = admin_client.get(TENANTS)
    found = admin_client.get(TENANTS, {"q": "Bob"})
    inactive = admin_client.get(TENANTS, {"is_active__exact": "0"})

    assert listing.status_code == 200
    assert "https://alice.example.com/hooks" in listing.content.decode()
    assert {t.slug for t in found.context["cl"].result_list} == {"bob"}
    assert list(inactive.context["cl"].result_list) == []


def test_tenant_list_shows_available_balances_and_the_rate_in_force(
    admin_client, tenant, other_tenant, settings, django_assert_max_num_queries
):
    from conftest import fund_tenant

    fund_tenant(tenant, "UGX", "50000")
    fund_tenant(tenant, "EUR", "12.5")
    other_tenant.rate_limit = "600/m"
    other_tenant.save(update_fields=["rate_limit"])
    settings.RATE_LIMIT_DEFAULT = "120/m"

    listing = admin_client.get(TENANTS)

    rows = {
        row.slug: row for row in listing.context["cl"].result_list
    }  # the page's own objects, as the columns read them
    admin = listing.context["cl"].model_admin
    assert admin.available_display(rows["alice"]) == "12.50 EUR · 50000 UGX"
    assert admin.available_display(rows["bob"]) == "-"
    assert admin.rate_limit_display(rows["alice"]) == "120/m (default)"
    assert admin.rate_limit_display(rows["bob"]) == "600/m"
    content = listing.content.decode()
    assert "12.50 EUR · 50000 UGX" in content
    assert "Empty: RATE_LIMIT_DEFAULT" not in content


def test_tenant_list_reads_balances_in_one_query_whatever_the_rows(
    admin_client, tenant, other_tenant
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conftest import fund_tenant

    with CaptureQueriesContext(connection) as two:
        admin_client.get(TENANTS)
    for tenant_row in (tenant, other_tenant):
        fund_tenant(tenant_row, "UGX", "100")
    with CaptureQueriesContext(connection) as funded:
        admin_client.get(TENANTS)

    assert len(funded) == len(two)


def test_tenant_form_says_the_default_rate_not_the_settings_name(admin_client, tenant, settings):
    settings.RATE_LIMIT_DEFAULT = "90/m"

    content = admin_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content

    assert b"the gateway's default, 90/m (RATE_LIMIT_DEFAULT)" in content


def test_tenants_cannot_be_deleted(admin_client, tenant):
    delete = reverse("admin:tenants_tenant_delete", args=[tenant.pk])

    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()


# --- keys and secrets from the tenant -----------------------------------------------------


def test_issue_api_key_action_shows_a_working_key_once(admin_client, alice):
    response = admin_client.post(
        TENANTS,
        {"action": "issue_api_key", "_selected_action": [alice.tenant.pk]},
        follow=True,
    )

    [message] = messages_of(response)
    [raw_key] = KEY_RE.findall(message)
    assert raw_key != alice.api_key
    assert api_status(raw_key, "alice") == 200
    assert api_status(alice.api_key, "alice") == 200  # the old key still works
    new = ApiKey.objects.get(prefix=raw_key[:12])
    assert new.name == "issued in the admin by admin"
    event = AuditEvent.objects.get(action="api_key.created", object_id=str(new.pk))
    assert event.actor_id == "admin"


def test_issue_api_key_button_on_the_tenant_page(admin_client, tenant):
    url = reverse("admin:tenants_tenant_object_action", args=[tenant.pk, "issue_api_key"])

    response = admin_client.post(url, follow=True)

    assert KEY_RE.findall(" ".join(messages_of(response)))
    assert ApiKey.objects.filter(tenant=tenant).count() == 2


def test_rotate_webhook_secret_action_shows_the_new_secret_once(admin_client, tenant):
    old = tenant.webhook_secret

    response = admin_client.post(
        TENANTS,
        {"action": "rotate_webhook_secret", "_selected_action": [tenant.pk]},
        follow=True,
    )

    [message] = messages_of(response)
    [secret] = SECRET_RE.findall(message)
    tenant.refresh_from_db()
    assert tenant.webhook_secret == secret != old
    assert tenant.previous_webhook_secret == old
    assert "previous secret keeps signing until" in message
    assert AuditEvent.objects.get(action="tenant.webhook_secret_rotated").actor_id == "admin"
    page = admin_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert secret not in page.content.decode()
    assert "The previous secret also signs until" in page.content.decode()


def test_secret_actions_refuse_many_tenants_at_once(admin_client, db):
    from gateway.audit import Actor
    from tenants.admin import MAX_TENANTS_PER_SECRET_ACTION
    from tenants.services import tenant_create

    for index in range(MAX_TENANTS_PER_SECRET_ACTION + 1):
        tenant_create(slug=f"t{index}", name=f"T{index}", actor=Actor.system())
    keys = ApiKey.objects.count()

    response = admin_client.post(
        TENANTS,
        {
            "action": "issue_api_key",
            "_selected_action": list(Tenant.objects.values_list("pk", flat=True)),
        },
        follow=True,
    )

    [message] = messages_of(response)
    assert "Nothing was done" in message
    assert ApiKey.objects.count() == keys


# --- API keys -----------------------------------------------------------------------------


def test_api_key_list_and_page(admin_client, alice, bob):
    key = ApiKey.objects.get(tenant=alice.tenant)

    listing = admin_client.get(KEYS)
    by_prefix = admin_client.get(KEYS, {"q": alice.api_key[:8]})
    by_tenant = admin_client.get(KEYS, {"tenant__id__exact": bob.tenant.pk})
    page = admin_client.get(reverse("admin:tenants_apikey_change", args=[key.pk]))

    assert listing.status_code == 200
    assert len(listing.context["cl"].result_list) == 2
    assert [k.pk for k in by_prefix.context["cl"].result_list] == [key.pk]
    assert [k.tenant_id for k in by_tenant.context["cl"].result_list] == [bob.tenant.pk]
    assert page.status_code == 200
    assert key.prefix in page.content.decode()
    assert key.key_hash not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()


def test_api_keys_cannot_be_added_changed_or_deleted(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    change = reverse("admin:tenants_apikey_change", args=[key.pk])

    assert admin_client.get(reverse("admin:tenants_apikey_add")).status_code == 403
    assert admin_client.post(change, {"name": "renamed"}).status_code == 403
    delete = reverse("admin:tenants_apikey_delete", args=[key.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    key.refresh_from_db()
    assert key.name == ""


def test_revoke_action_revokes(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)

    response = admin_client.post(
        KEYS, {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )

    assert messages_of(response) == ["Revoked 1 API key(s)."]
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_status(alice.api_key, "alice") == 401
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert (event.actor_type, event.actor_id) == ("staff", "admin")
    revoked = admin_client.get(KEYS, {"state": "revoked"})
    assert [k.pk for k in revoked.context["cl"].result_list] == [key.pk]

    again = admin_client.post(KEYS, {"action": "revoke", "_selected_action": [key.pk]}, follow=True)
    assert messages_of(again) == ["1 key(s) were already revoked; left as they were."]
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_revoke_button_on_the_key_page(admin_client, alice):
    key = ApiKey.objects.get(tenant=alice.tenant)
    url = reverse("admin:tenants_apikey_object_action", args=[key.pk, "revoke"])
    assert (
        url
        in admin_client.get(reverse("admin:tenants_apikey_change", args=[key.pk])).content.decode()
    )

    admin_client.post(url)

    key.refresh_from_db()
    assert key.revoked_at is not None


def test_view_only_staff_cannot_revoke_or_issue(client, django_user_model, alice):
    user = django_user_model.objects.create_user(username="viewer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_apikey", "view_tenant"])
    )
    client.force_login(user)
    key = ApiKey.objects.get(tenant=alice.tenant)

    listing = client.get(KEYS)
    assert listing.status_code == 200
    assert listing.context["action_form"] is None  # revoking is its only action
    url = reverse("admin:tenants_apikey_object_action", args=[key.pk, "revoke"])
    assert client.post(url).status_code == 403
    issue = reverse("admin:tenants_tenant_object_action", args=[alice.tenant.pk, "issue_api_key"])
    assert client.post(issue).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApiKey.objects.count() == 1
    page = client.get(reverse("admin:tenants_tenant_change", args=[alice.tenant.pk]))
    assert page.status_code == 200
    assert "Issue a new API key" not in page.content.decode()
