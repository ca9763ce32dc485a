import json
import re
from decimal import Decimal
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
        parser.add_argument(
            "--collection-fee-percent",
            default="0",
            help="The gateway's fee on each successful collection, 0 to 100 (default 0).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fee = parse_fee_percent(options["collection_fee_percent"])
        try:
            tenant, issued = tenant_create(
                slug=options["slug"],
                name=options["name"],
                webhook_url=options["webhook_url"],
                rate_limit=options["rate_limit"],
                collection_fee_percent=fee,
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


_PERCENT_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?", re.ASCII)


def parse_fee_percent(raw: str) -> Decimal:
    """A plain decimal from 0 to 100 with at most two decimals (no sign, exponent or NaN)."""
    text = raw.strip()
    if not _PERCENT_RE.fullmatch(text) or Decimal(text) > 100:
        raise CommandError(
            f"--collection-fee-percent must be a number from 0 to 100 with at most two "
            f"decimals, not {raw!r}."
        )
    return Decimal(text)
