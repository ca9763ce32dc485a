import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway.audit import Actor
from gateway.crypto import EncryptionKeyError
from mtn.accounts import (
    SANDBOX_BASE_URL,
    MtnAccountError,
    account_output,
    check_account_name,
    check_callback_host,
    check_url,
    mtn_account_set,
)
from mtn.client import provision_sandbox_user
from mtn.errors import MtnError


class Command(BaseCommand):
    help = (
        "Create an API user and API key per product through MTN's sandbox provisioning API "
        "(as the MTN SDKs' momo-init does) and store them as MTN account NAME (target "
        "environment sandbox, currency EUR, callback URL https://HOST)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--collection-subscription-key", required=True)
        parser.add_argument("--disbursement-subscription-key", required=True)
        parser.add_argument(
            "--callback-host",
            required=True,
            help="the host name MTN may call back (providerCallbackHost), e.g. pay.example.com",
        )
        parser.add_argument("--base-url", default=SANDBOX_BASE_URL)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            check_account_name(options["name"])
            base_url = check_url(options["base_url"], "The base URL")
            host = check_callback_host(options["callback_host"])
        except (MtnAccountError, ValueError) as exc:
            raise CommandError(f"{exc} Nothing was created.") from exc
        credentials: dict[str, dict[str, str]] = {}
        for product in ("collection", "disbursement"):
            key = options[f"{product}_subscription_key"].strip()
            if not key:
                raise CommandError(f"The {product} subscription key is empty. Nothing was created.")
            try:
                user = provision_sandbox_user(
                    base_url=base_url, subscription_key=key, callback_host=host
                )
            except MtnError as exc:
                raise CommandError(
                    f"MTN's sandbox refused to provision the {product} API user ({exc.code}"
                    f"{': ' + exc.message if exc.message != exc.code else ''}); check the "
                    f"{product} subscription key. Nothing was stored."
                ) from exc
            credentials[product] = {
                "subscription_key": key,
                "api_user": user.api_user,
                "api_key": user.api_key,
            }
        try:
            account = mtn_account_set(
                name=options["name"],
                target_environment="sandbox",
                currencies=["EUR"],
                credentials=credentials,
                base_url=base_url,
                callback_url=f"https://{host}",
                actor=Actor.system(),
            )
        except (MtnAccountError, EncryptionKeyError) as exc:
            raise CommandError(f"{exc} Nothing was stored.") from exc
        self.stdout.write(json.dumps(account_output(account)))
