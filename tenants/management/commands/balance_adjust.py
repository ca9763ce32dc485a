"""``manage.py balance_adjust SLUG CURRENCY AMOUNT --reason TEXT``: credit or debit a
tenant's available balance by hand (e.g. a tenant pre-funding its payouts)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from gateway.currencies import format_amount
from gateway.models import AuditEvent
from ledger.errors import InsufficientFunds
from ledger.selectors import balance_get
from ledger.services import ledger_adjust
from payments.money import MoneyError, parse_amount, parse_currency
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
            currency = parse_currency(options["currency"])
            amount = parse_signed_amount(options["amount"], currency)
        except MoneyError as exc:
            raise CommandError(f"Malformed amount or currency: {exc}") from exc
        reason = options["reason"].strip()
        if not reason:
            raise CommandError("--reason must not be empty.")
        try:
            ledger_adjust(
                tenant_id=tenant.pk,
                currency=currency,
                amount=amount,
                reason=reason,
                actor=Actor(AuditEvent.ActorType.SYSTEM, "manage.py balance_adjust"),
            )
        except InsufficientFunds as exc:
            raise CommandError(exc.message) from exc
        except ValueError as exc:  # a reason over the ledger's limit
            raise CommandError(str(exc)) from exc
        balance = balance_get(tenant_id=tenant.pk, currency=currency)
        self.stdout.write(
            json.dumps(
                {
                    "tenant": tenant.slug,
                    "currency": currency,
                    "available": format_amount(balance.available, currency),
                }
            )
        )


def parse_signed_amount(text: str, currency: str) -> Decimal:
    """The payments' money rules for the amount without its sign; a leading ``-`` debits."""
    negative = text.startswith("-")
    amount = parse_amount(text[1:] if negative else text, currency)
    return -amount if negative else amount
