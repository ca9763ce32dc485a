import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.crypto import EncryptionKeyError, SecretDecryptionError
from mtn.accounts import (
    MtnAccountError,
    account_check_passed,
    mtn_account_check,
    mtn_account_get,
)
from mtn.models import PRODUCTS


class Command(BaseCommand):
    help = (
        "Check an MTN account with MTN: a fresh token for each product it has, then its "
        "balance. Prints one JSON object; exits non-zero when MTN refuses a credential, with "
        "the reason in words on standard error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            account = mtn_account_get(name=options["name"])
            result = mtn_account_check(account)
        except (MtnAccountError, EncryptionKeyError, SecretDecryptionError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result))
        if not account_check_passed(result):
            failures = [
                f"{product}: {result[product]['message']}"
                for product in PRODUCTS
                if result[product] is not None and not result[product]["ok"]
            ]
            raise CommandError("MTN account check failed. " + " ".join(failures))
