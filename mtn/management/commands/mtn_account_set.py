import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from gateway.crypto import EncryptionKeyError
from mtn.accounts import KEEP, MtnAccountError, account_output, mtn_account_set


def _limit(value: str | None) -> Any:
    """A limit flag: left out keeps the stored value, ``default`` returns to the setting."""
    if value is None:
        return KEEP
    return None if value.strip().lower() == "default" else value


class Command(BaseCommand):
    help = (
        "Create or update an MTN account. Credentials are read as one JSON object on standard "
        'input, never from the command line: {"collection": {"subscription_key", "api_user", '
        '"api_key"}, "disbursement": {...}} (a product left out keeps what it had). Bad input '
        "exits non-zero and stores nothing."
    )
    # call_command(..., stdin=...) in tests; the real command reads sys.stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--target-environment", required=True)
        parser.add_argument("--currency", action="append", required=True, dest="currencies")
        parser.add_argument("--base-url")
        parser.add_argument("--tenant", help="slug of the tenant that owns it; none: the platform")
        parser.add_argument("--callback-url")
        parser.add_argument(
            "--max-in-flight",
            metavar="N",
            help="calls at once to MTN through this account, over all processes; "
            "'default': MTN_MAX_IN_FLIGHT (left out: unchanged)",
        )
        parser.add_argument(
            "--rate-limit",
            metavar="R",
            help="calls per second to MTN through this account, over all processes; "
            "'default': MTN_RATE_LIMIT (left out: unchanged)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stream = options.get("stdin") or sys.stdin
        raw = stream.read()
        if not raw.strip():
            raise CommandError(
                "Give the credentials as one JSON object on standard input (use {} to change "
                "only the other settings of an existing account)."
            )
        try:
            credentials = json.loads(raw)
        except json.JSONDecodeError as exc:
            # The message of json's error quotes nothing of the input but its position.
            raise CommandError(
                f"Standard input is not JSON: {exc.msg} at line {exc.lineno}. Nothing was stored."
            ) from exc
        except RecursionError as exc:
            raise CommandError("Standard input nests too deeply. Nothing was stored.") from exc
        try:
            account = mtn_account_set(
                name=options["name"],
                target_environment=options["target_environment"],
                currencies=options["currencies"],
                credentials=credentials,
                base_url=options["base_url"],
                tenant_slug=options["tenant"],
                callback_url=options["callback_url"],
                max_in_flight=_limit(options["max_in_flight"]),
                rate_limit=_limit(options["rate_limit"]),
                actor=Actor.system(),
            )
        except (MtnAccountError, EncryptionKeyError) as exc:
            raise CommandError(f"{exc} Nothing was stored.") from exc
        self.stdout.write(json.dumps(account_output(account)))
