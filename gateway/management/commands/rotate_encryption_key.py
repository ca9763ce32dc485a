import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from gateway.audit import Actor, audit_record
from gateway.crypto import EncryptionKeyError, SecretDecryptionError, reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret stored in the database (MTN credentials, tenants' webhook "
        "secrets) with the first key of FIELD_ENCRYPTION_KEYS. Afterwards the other keys can be "
        "dropped. All or nothing: a secret no configured key opens stops it, unchanged."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                changed = reencrypt_all()
                audit_record(
                    tenant=None,
                    object_type="encryption_key",
                    object_id="",
                    action="encryption_key.rotated",
                    actor=Actor.system(),
                    data={"reencrypted": changed},
                )
        except (EncryptionKeyError, SecretDecryptionError) as exc:
            raise CommandError(f"{exc} Nothing was re-encrypted.") from exc
        self.stdout.write(json.dumps({"reencrypted": changed}, sort_keys=True))
