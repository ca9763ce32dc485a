"""``manage.py mtn_sandbox``: run the local MTN MoMo simulator in the foreground."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mtn.sandbox import MARKET_CURRENCIES, Faults, ProductCredentials, SandboxConfig, start_sandbox
from mtn.sandbox.config import PRODUCTS, credentials_from_settings

_CREDENTIAL_FIELDS = ("subscription_key", "api_user", "api_key")


def _read_credentials(source: str) -> dict[str, ProductCredentials]:
    """``--credentials``: a JSON file (or ``-`` for standard input) shaped like
    ``mtn_account_set``'s input, ``{"collection": {"subscription_key", "api_user",
    "api_key"}, "disbursement": {...}}``; a product left out keeps the MTN_* values."""
    try:
        if source == "-":
            data = json.load(sys.stdin)
        else:
            with open(source, encoding="utf-8") as handle:
                data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CommandError(f"--credentials: cannot read JSON from {source}: {exc}") from exc
    if not isinstance(data, dict) or not data or set(data) - set(PRODUCTS):
        raise CommandError("--credentials: expected an object with collection/disbursement")
    result = {}
    for product, values in data.items():
        if not isinstance(values, dict) or set(values) != set(_CREDENTIAL_FIELDS):
            raise CommandError(
                f"--credentials: {product} needs exactly {', '.join(_CREDENTIAL_FIELDS)}"
            )
        if not all(isinstance(v, str) and v.strip() for v in values.values()):
            raise CommandError(f"--credentials: {product} values must be non-empty strings")
        result[product] = ProductCredentials(**{k: values[k].strip() for k in _CREDENTIAL_FIELDS})
    return result


class Command(BaseCommand):
    help = (
        "Run the local MTN MoMo simulator. It accepts the MTN_* credentials from settings, "
        "so the gateway works against it with no setup. Stops on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--delay-seconds",
            type=float,
            default=25.0,
            help="How long 46733123454 stays PENDING before turning SUCCESSFUL.",
        )
        parser.add_argument(
            "--latency",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Answer every MTN call this many seconds late, as a slow MTN does (other "
            "calls are not held up); change it while running with POST /_simulator/latency "
            '{"seconds": 2}.',
        )
        parser.add_argument(
            "--callback-method",
            choices=["PUT", "POST"],
            default="POST",
            help="How callbacks are sent: POST (MTN's callback page; default) or PUT (v2).",
        )
        parser.add_argument(
            "--reason-as-object",
            action="store_true",
            help="Send reason as {code, message} (the spec) instead of a string (live MTN).",
        )
        parser.add_argument(
            "--signed-callback-url",
            default=None,
            help="Also send every final callback, signed, to this URL.",
        )
        parser.add_argument(
            "--provider-callback-host",
            default=None,
            help="providerCallbackHost of the configured API users: an X-Callback-Url with "
            "another host is 500 INVALID_CALLBACK_URL_HOST (default: MTN_CALLBACK_URL's host, "
            "else localhost).",
        )
        parser.add_argument(
            "--target-environment",
            default=None,
            help="The market this simulator is (X-Target-Environment it accepts), e.g. "
            "mtnuganda; default MTN_TARGET_ENVIRONMENT.",
        )
        parser.add_argument(
            "--currency",
            default=None,
            help="The only currency it accepts; default the market's own (UGX for "
            "mtnuganda, EUR for sandbox).",
        )
        parser.add_argument(
            "--credentials",
            default=None,
            metavar="FILE",
            help="JSON file ('-' for standard input) with the credentials to accept instead "
            'of the MTN_* ones: {"collection": {"subscription_key", "api_user", "api_key"}, '
            '"disbursement": {...}}.',
        )
        parser.add_argument("--seed", type=int, default=None, help="Seed for random faults.")
        parser.add_argument(
            "--faults",
            default=None,
            help="Initial faults as JSON, e.g. '{\"post_error_rate\": 0.2}'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        faults = Faults()
        if options["faults"]:
            try:
                faults.update(json.loads(options["faults"]))
            except (ValueError, TypeError) as exc:
                raise CommandError(f"--faults: {exc}") from exc
        market: dict[str, Any] = {}
        target = options["target_environment"]
        if target is not None:
            if not re.fullmatch(r"[a-z]{3,40}", target):
                raise CommandError("--target-environment: lower-case letters, e.g. mtnuganda")
            market["target_environment"] = target
        currency = options["currency"]
        if currency is not None:
            currency = currency.strip().upper()
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise CommandError("--currency: an ISO 4217 code such as UGX")
            market["currency"] = currency
        latency = options["latency"]
        if not 0 <= latency <= 600:  # also refuses nan
            raise CommandError("--latency: seconds from 0 to 600")
        if options["credentials"]:
            credentials = _read_credentials(options["credentials"])
            for product in PRODUCTS:
                market[product] = credentials.get(product) or credentials_from_settings(product)
        config = SandboxConfig(
            **market,
            delay_seconds=options["delay_seconds"],
            latency_seconds=latency,
            callback_method=options["callback_method"],
            reason_as_object=options["reason_as_object"],
            signed_callback_url=options["signed_callback_url"],
            **(
                {"provider_callback_host": options["provider_callback_host"].strip()}
                if options["provider_callback_host"]
                else {}
            ),
            seed=options["seed"],
            faults=faults,
        )
        try:
            handle = start_sandbox(config, host=options["host"], port=options["port"])
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc

        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        currency = config.currency or "any currency"
        if config.currency is None:
            known = ", ".join(sorted(MARKET_CURRENCIES))
            self.stderr.write(
                f"Unknown target environment {config.target_environment!r} (known: {known}) "
                "and no --currency: every currency is accepted."
            )
        slow = f", answering {latency:g} s late" if latency else ""
        self.stdout.write(
            f"MTN sandbox listening on {handle.base_url} "
            f"(target environment {config.target_environment!r}, {currency}{slow}, callbacks "
            f"to host {config.provider_callback_host!r} only); Ctrl-C to stop"
        )
        self.stdout.flush()
        handle.serve_until(stop)
        self.stdout.write("MTN sandbox stopped")
