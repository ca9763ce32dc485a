import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.crypto import EncryptionKeyError, SecretDecryptionError
from mtn.accounts import MtnAccountError, mtn_account_check, mtn_account_get


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
        self.stdout.write(json.dumps(result.as_dict()))
        if not result.ok:
            failures = [
                f"{check.product}: {check.problem}" for check in result.checks if not check.ok
            ]
            raise CommandError(
                "MTN account check failed. " + (" ".join(failures) or "It has no credentials.")
            )
