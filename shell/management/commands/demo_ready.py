"""For ``make run``: wait until every process answers, then frame what a newcomer needs.

``make run`` prints a screenful while five processes start; the API key and the admin login
scroll away. This process (Procfile.dev's ``ready``) waits for the gateway, both simulators,
the worker (its metrics port) and the webhook receiver, prints them again in a box, and then
stays up without a word, because honcho stops every process when one of them exits.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shell.management.commands.demo_tenant import (
    DEMO_SLUG,
    admin_password_file,
    default_key_file,
)

# What each `make run` process answers on (Procfile.dev); any HTTP answer counts.
PROCESSES = (
    ("gateway", "http://127.0.0.1:8000/readyz"),
    ("MTN simulator, sandbox (EUR)", "http://127.0.0.1:8001/"),
    ("MTN simulator, mtnuganda (UGX)", "http://127.0.0.1:8002/"),
    ("worker", "http://127.0.0.1:8004/metrics"),
    ("webhook receiver", "http://127.0.0.1:8003/"),
)


def answers(url: str) -> bool:
    """Whether something answers HTTP at ``url`` (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - fixed loopback URLs
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def framed(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "═" * (width + 2)
    body = "\n".join(f"║ {line.ljust(width)} ║" for line in lines)
    return f"╔{rule}╗\n{body}\n╚{rule}╝"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


class Command(BaseCommand):
    help = (
        "For `make run`: wait until the gateway, the simulators, the worker and the webhook "
        "receiver answer, print the demo API key and admin login in a box, then stay up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--timeout", type=float, default=120.0, help="seconds to wait (default 120)"
        )
        parser.add_argument(
            "--exit", action="store_true", help="exit after printing (default: stay up)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        waiting = dict(PROCESSES)
        deadline = time.monotonic() + options["timeout"]
        while waiting and not stop.is_set() and time.monotonic() < deadline:
            waiting = {name: url for name, url in waiting.items() if not answers(url)}
            if waiting:
                stop.wait(0.5)
        if stop.is_set():
            return
        self.stdout.write("\n" + framed(self.summary(silent=sorted(waiting))) + "\n")
        if not options["exit"]:
            stop.wait()

    @staticmethod
    def summary(*, silent: list[str]) -> list[str]:
        api_key = _read(default_key_file()) or "(see var/demo-api-key)"
        password = _read(admin_password_file(default_key_file()))
        login = f"admin / {password}" if password else "admin (changepassword admin to reset)"
        lines = [
            "momo-gateway is ready" if not silent else "momo-gateway started, but not all of it",
            "",
            "API       http://127.0.0.1:8000/api/v1/   (docs: http://127.0.0.1:8000/api/docs/)",
            f"API key   {api_key}",
            f"Tenant    {DEMO_SLUG}   (X-Tenant-ID beside X-API-Key, or Bearer <key> alone)",
            f"Admin     http://127.0.0.1:8000/admin/   {login}",
            "Webhooks  each verified event is printed below by webhook_listen",
            "Stop      Ctrl-C",
        ]
        if silent:
            lines.append(f"Not answering yet: {', '.join(silent)}")
        return lines
