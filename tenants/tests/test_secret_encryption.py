"""Tenants' webhook secrets are encrypted at rest and read back as plaintext to sign."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from standardwebhooks import Webhook

from gateway import crypto
from gateway.audit import Actor
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_rotate_webhook_secret
from webhooks.delivery import signed_request
from webhooks.models import MerchantDelivery


def _stored(tenant_id, column: str = "webhook_secret") -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM tenants_tenant WHERE id = %s",  # noqa: S608
            [Tenant._meta.pk.get_db_prep_value(tenant_id, connection)],
        )
        return cursor.fetchone()[0]


def test_webhook_secret_is_stored_encrypted_and_read_back_in_clear(tenant):
    stored = _stored(tenant.pk)
    fresh = Tenant.objects.get(pk=tenant.pk)
    assert fresh.webhook_secret.startswith("whsec_")
    assert fresh.webhook_secret not in stored
    assert crypto.decrypt(stored) == fresh.webhook_secret


def test_rotated_secrets_are_both_stored_encrypted(tenant):
    old = tenant.webhook_secret
    rotated = tenant_rotate_webhook_secret(tenant=tenant, actor=Actor.system())
    assert old not in _stored(tenant.pk, "previous_webhook_secret")
    assert rotated.webhook_secret not in _stored(tenant.pk)
    fresh = Tenant.objects.get(pk=tenant.pk)
    assert (fresh.webhook_secret, fresh.previous_webhook_secret) == (rotated.webhook_secret, old)


def test_a_wrong_key_fails_loudly_when_the_secret_is_read_not_when_the_tenant_loads(
    tenant, settings
):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    fresh = Tenant.objects.get(pk=tenant.pk)  # authentication still loads tenants
    assert fresh.slug == tenant.slug
    with pytest.raises(crypto.SecretDecryptionError, match=r"Tenant\.webhook_secret"):
        _ = fresh.webhook_secret


def test_saving_a_tenant_whose_secret_was_not_read_keeps_its_ciphertext(tenant):
    before = _stored(tenant.pk)
    fresh = Tenant.objects.get(pk=tenant.pk)
    fresh.name = "Renamed"
    fresh.save()
    assert _stored(tenant.pk) == before


def test_a_secret_cannot_be_looked_up_by_value(tenant):
    assert not Tenant.objects.filter(webhook_secret=tenant.webhook_secret).exists()
    assert Tenant.objects.filter(previous_webhook_secret="").count() == 1


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_the_secrets_already_stored_and_reverses():
    executor = MigrationExecutor(connection)
    executor.migrate([("tenants", "0001_initial")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants_tenant (id, slug, name, is_active, webhook_url, webhook_secret,"
            " previous_webhook_secret, rate_limit, created_at, updated_at) VALUES"
            " (%s, 'old', 'Old', %s, '', 'whsec_plain', '', '', %s, %s)",
            ["0" * 32, True, "2026-01-01 00:00:00+00:00", "2026-01-01 00:00:00+00:00"],
        )
    try:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("tenants"))
        tenant = Tenant.objects.get(slug="old")
        assert _stored(tenant.pk) != "whsec_plain"
        assert tenant.webhook_secret == "whsec_plain"
        assert tenant.previous_webhook_secret == ""

        executor = MigrationExecutor(connection)
        executor.migrate([("tenants", "0001_initial")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT webhook_secret FROM tenants_tenant WHERE slug = 'old'")
            assert cursor.fetchone()[0] == "whsec_plain"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_create_tenant_hands_out_the_plaintext_secret_once(db):
    tenant, _ = tenant_create(slug="carol", name="Carol", actor=Actor.system())
    assert tenant.webhook_secret.startswith("whsec_")
    assert tenant.webhook_secret not in _stored(tenant.pk)


def test_webhooks_are_signed_with_the_decrypted_secret(tenant):
    delivery = MerchantDelivery(
        event_id="evt_1", tenant=Tenant.objects.get(pk=tenant.pk), payload={"a": 1}
    )
    body, headers = signed_request(delivery)
    assert Webhook(tenant.webhook_secret).verify(body, headers) == {"a": 1}


def test_a_wrong_key_stops_signing_instead_of_signing_with_ciphertext(tenant, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    delivery = MerchantDelivery(
        event_id="evt_1", tenant=Tenant.objects.get(pk=tenant.pk), payload={"a": 1}
    )
    with pytest.raises(crypto.SecretDecryptionError):
        signed_request(delivery)
