import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from tenants.services import TenantError, tenant_create


class Command(BaseCommand):
    help = (
        "Create a tenant and its first API key. Prints one JSON object with the API key and "
        "the webhook secret; both are shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--webhook-url", default="")
        parser.add_argument("--rate-limit", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant, issued = tenant_create(
                slug=options["slug"],
                name=options["name"],
                webhook_url=options["webhook_url"],
                rate_limit=options["rate_limit"],
                actor=Actor.system(),
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "tenant": tenant.slug,
                    "api_key": issued.raw_key,
                    "webhook_secret": tenant.webhook_secret,
                }
            )
        )
