"""``manage.py mtn_sandbox``: run the local MTN MoMo simulator in the foreground."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mtn.sandbox import Faults, SandboxConfig, start_sandbox


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
        parser.add_argument("--callback-method", choices=["PUT", "POST"], default="PUT")
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
            help="providerCallbackHost of the configured API users (default: any host).",
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
        config = SandboxConfig(
            delay_seconds=options["delay_seconds"],
            callback_method=options["callback_method"],
            reason_as_object=options["reason_as_object"],
            signed_callback_url=options["signed_callback_url"],
            provider_callback_host=options["provider_callback_host"],
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
        self.stdout.write(
            f"MTN sandbox listening on {handle.base_url} "
            f"(target environment {config.target_environment!r}); Ctrl-C to stop"
        )
        self.stdout.flush()
        handle.serve_until(stop)
        self.stdout.write("MTN sandbox stopped")
