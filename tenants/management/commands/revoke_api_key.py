from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from tenants.services import TenantError, api_key_revoke_by_prefix


class Command(BaseCommand):
    help = (
        "Revoke the one active API key that begins with KEY_PREFIX (the first 12 characters "
        "are enough). An unknown or ambiguous prefix revokes nothing and exits non-zero."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            api_key = api_key_revoke_by_prefix(
                key_prefix=options["key_prefix"], actor=Actor.system()
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked API key {api_key.prefix}… of tenant {api_key.tenant.slug}.")
