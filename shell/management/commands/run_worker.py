import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shell.metrics import serve_worker_metrics
from shell.worker import Worker


class Command(BaseCommand):
    help = (
        "Run the background work: the dispatcher (submissions to MTN, the confirmation of "
        "MTN's callbacks, status polls), merchant webhook deliveries and the purge of expired "
        "idempotency keys. Several workers may run at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Do all work that is due now, then exit 0."
        )
        parser.add_argument(
            "--idle-sleep",
            type=float,
            default=None,
            help="Seconds between looks for work that fell due by time (default "
            "DISPATCH_POLL_SECONDS; on PostgreSQL a NOTIFY wakes it sooner).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker()
        if options["once"]:
            counts = worker.drain()
            self.stdout.write(json.dumps({"done": counts}, sort_keys=True))
            return
        worker.install_signal_handlers()
        serve_worker_metrics()  # on WORKER_METRICS_PORT, when set
        worker.run_forever(idle_sleep=options["idle_sleep"])
