"""``manage.py reconcile [--since ISO8601] [--account NAME]``: ask MTN again about every
object that became final in the window, flag every disagreement, print the platform's MTN
wallet balances beside the ledger's record of them; exit 1 on a disagreement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mtn.accounts import MtnAccountNotFound, mtn_account_get
from payments.services.reconcile import default_since, reconcile


class Command(BaseCommand):
    help = (
        "Ask MTN again about every payment, payout and refund that became final since "
        "--since (default: where the last run ended, or a day ago), flag each disagreement "
        "for review, and print each platform MTN account's wallet balance beside the "
        "ledger's record of it. Exits 1 when it found a disagreement."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="ISO 8601, e.g. 2026-12-01T00:00:00Z")
        parser.add_argument("--account", help="Only this MTN account's objects and wallets.")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _parse_since(options["since"]) if options["since"] else default_since()
        account = options["account"]
        if account:
            try:
                mtn_account_get(name=account)
            except MtnAccountNotFound as exc:
                raise CommandError(str(exc)) from exc
        run = reconcile(since=since, until=timezone.now(), account=account, out=self.stdout.write)
        if run is not None and run.disagreements:
            raise CommandError(
                f"{run.disagreements} disagreement(s) with MTN: flagged for review.", returncode=1
            )


def _parse_since(raw: str) -> datetime:
    moment = parse_datetime(raw)
    if moment is None:
        raise CommandError(f"--since must be an ISO 8601 date and time, not {raw!r}.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_fixed_timezone(0))
    return moment
