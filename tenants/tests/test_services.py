"""Tenant and API key services: what they store and the audit events they write."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.audit import Actor
from gateway.models import AuditEvent
from tenants.keys import API_KEY_PREFIX_LENGTH, generate_api_key, generate_webhook_secret
from tenants.models import ApiKey, Tenant
from tenants.services import (
    TenantError,
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_rotate_webhook_secret,
)

pytestmark = pytest.mark.django_db


def test_tenant_create_writes_tenant_and_key_events_in_order():
    tenant, issued = tenant_create(
        slug="acme", name="Acme", webhook_url="https://acme.example.com/h", actor=Actor.staff("sam")
    )

    events = list(AuditEvent.objects.filter(tenant=tenant).order_by("pk"))
    assert [(e.action, e.object_type) for e in events] == [
        ("tenant.created", "tenant"),
        ("api_key.created", "api_key"),
    ]
    assert events[0].data == {
        "slug": "acme",
        "name": "Acme",
        "webhook_url": "https://acme.example.com/h",
    }
    assert events[1].object_id == str(issued.api_key.pk)
    assert {e.actor for e in events} == {"staff:sam"}


def test_tenant_create_with_a_taken_slug_writes_nothing(tenant):
    before = (Tenant.objects.count(), ApiKey.objects.count(), AuditEvent.objects.count())

    with pytest.raises(TenantError):
        tenant_create(slug=tenant.slug, name="Again", actor=Actor.system())

    assert (Tenant.objects.count(), ApiKey.objects.count(), AuditEvent.objects.count()) == before


def test_api_key_create_writes_an_event_and_stores_only_the_hash(tenant):
    issued = api_key_create(tenant=tenant, actor=Actor.staff("sam"), name="ci")

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert stored.key_hash == hashlib.sha256(issued.raw_key.encode()).hexdigest()
    assert stored.prefix == issued.raw_key[:API_KEY_PREFIX_LENGTH]
    assert stored.name == "ci"
    event = AuditEvent.objects.get(action="api_key.created", object_id=str(stored.pk))
    assert event.actor == "staff:sam"
    assert event.data == {"prefix": stored.prefix}


def test_api_key_revoke_writes_one_event_and_is_idempotent(tenant):
    api_key = ApiKey.objects.get(tenant=tenant)

    revoked = api_key_revoke(api_key=api_key, actor=Actor.staff("sam"))
    again = api_key_revoke(api_key=api_key, actor=Actor.staff("sam"))

    assert revoked.revoked_at is not None
    assert again.revoked_at == revoked.revoked_at
    events = AuditEvent.objects.filter(action="api_key.revoked", object_id=str(api_key.pk))
    assert events.count() == 1
    assert events.get().actor == "staff:sam"


def test_rotating_the_webhook_secret_keeps_the_old_one_for_a_grace_period(tenant):
    old_secret = tenant.webhook_secret

    rotated = tenant_rotate_webhook_secret(tenant=tenant, actor=Actor.system())

    assert rotated.webhook_secret != old_secret
    assert rotated.webhook_secret.startswith("whsec_")
    assert rotated.previous_webhook_secret == old_secret
    assert rotated.previous_webhook_secret_expires_at is not None
    assert AuditEvent.objects.filter(action="tenant.webhook_secret_rotated").count() == 1
    assert old_secret not in str(
        AuditEvent.objects.get(action="tenant.webhook_secret_rotated").data
    )


def test_api_keys_are_long_random_and_marked():
    keys = {generate_api_key() for _ in range(50)}

    assert len(keys) == 50
    assert all(key.startswith("mgw_") and len(key) >= 40 for key in keys)
    assert len({key[:API_KEY_PREFIX_LENGTH] for key in keys}) == 50


def test_webhook_secrets_are_standard_webhooks_secrets():
    secret = generate_webhook_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
