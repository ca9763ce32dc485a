import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from tenants.models import Tenant
from tenants.services import api_key_create


class Command(BaseCommand):
    help = "Issue a new API key for a tenant. Prints it once as JSON; only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(slug=options["slug"])
        except Tenant.DoesNotExist as exc:
            raise CommandError(f"No tenant with slug {options['slug']!r}.") from exc
        issued = api_key_create(tenant=tenant, actor=Actor.system(), name=options["name"])
        self.stdout.write(json.dumps({"tenant": tenant.slug, "api_key": issued.raw_key}))
