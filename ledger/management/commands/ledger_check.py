"""``manage.py ledger_check``: prove the ledger consistent, or list what is wrong."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = (
        "Check that every ledger account's balance equals the sum of its entries, that every "
        "transaction balances, and that no balance that must not be negative is. Prints a "
        "JSON summary; exits non-zero and lists the problems when there are any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_verify()
        summary = {
            "ok": not problems,
            "accounts": LedgerAccount.objects.count(),
            "transactions": LedgerTransaction.objects.count(),
            "entries": LedgerEntry.objects.count(),
            "problems": problems,
        }
        self.stdout.write(json.dumps(summary))
        if problems:
            raise CommandError(f"The ledger has {len(problems)} problem(s); see the list above.")
