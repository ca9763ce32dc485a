"""Tenants' webhook secrets encrypted at rest with FIELD_ENCRYPTION_KEYS.

The columns become text (a Fernet token is longer than the secret), then every secret already
stored is encrypted in place. Raw SQL reads and writes the columns, because the field now
decrypts what it reads and would refuse the plaintext still stored. Reversible: going back
decrypts them again.
"""

from django.db import migrations

import gateway.crypto

COLUMNS = ("webhook_secret", "previous_webhook_secret")


def _transform(apps, schema_editor, change):
    Tenant = apps.get_model("tenants", "Tenant")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    table = quote(Tenant._meta.db_table)
    select = ", ".join(quote(column) for column in COLUMNS)
    assignments = ", ".join(f"{quote(column)} = %s" for column in COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('id')}, {select} FROM {table}")  # noqa: S608
        rows = cursor.fetchall()
        for pk, *values in rows:
            changed = [change(value) if value else value for value in values]
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s",  # noqa: S608
                [*changed, pk],
            )


def encrypt_secrets(apps, schema_editor):
    _transform(apps, schema_editor, gateway.crypto.encrypt)


def decrypt_secrets(apps, schema_editor):
    _transform(
        apps,
        schema_editor,
        lambda token: gateway.crypto.decrypt(token, what="a tenant's webhook secret"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_tenant_collection_fee_percent"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="previous_webhook_secret",
            field=gateway.crypto.EncryptedTextField(blank=True, default="", editable=False),
        ),
        migrations.AlterField(
            model_name="tenant",
            name="webhook_secret",
            field=gateway.crypto.EncryptedTextField(editable=False),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
