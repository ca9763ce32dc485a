"""``manage.py balance_adjust SLUG CURRENCY AMOUNT --reason TEXT``: credit or debit a
tenant's available balance by hand (e.g. a tenant pre-funding its payouts)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from gateway.models import AuditEvent
from gateway.money import format_amount
from tenants.balances import AdjustmentRefused, tenant_balance_adjust
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Credit (positive AMOUNT) or debit (negative AMOUNT) a tenant's available balance. "
        "Prints the balance after it as JSON. Audited. A debit larger than the available "
        "balance, an unknown tenant or a malformed amount changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("currency")
        # argparse takes "-1250" as a positional: no option of this command looks like a number.
        parser.add_argument("amount", help="e.g. 50000 or -1250 (UGX), 12.50 or -3 (EUR)")
        parser.add_argument("--reason", required=True, help="Why: kept in the audit trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}.")
        try:
            balance = tenant_balance_adjust(
                tenant=tenant,
                currency=options["currency"],
                amount=options["amount"],
                reason=options["reason"],
                actor=Actor(AuditEvent.ActorType.SYSTEM, "manage.py balance_adjust"),
            )
        except AdjustmentRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "tenant": tenant.slug,
                    "currency": balance.currency,
                    "available": format_amount(balance.available, balance.currency),
                }
            )
        )
