"""A local receiver for a tenant's merchant webhooks, like ``stripe listen``.

``python manage.py webhook_listen [--port 8003] [--tenant demo]`` listens on 127.0.0.1,
verifies every POST with the tenant's ``whsec_`` secret the way a merchant would (the
reference ``standardwebhooks`` library) and prints one line per event. It answers 200 to
an event it verified and 400 to anything else, so a forged or stale delivery shows up here
and the gateway's retries can be watched. ``make run`` starts it for the demo tenant, whose
webhook URL points at it.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from tenants.models import Tenant


class Writable(Protocol):
    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


DEFAULT_PORT = 8003  # 8001 is the MTN simulator; 8002 a second simulator in the README
MAX_BODY_BYTES = 1024 * 1024


def tenant_secrets(slug: str) -> list[str]:
    """The tenant's current webhook secret and, during a rotation, the previous one.

    Read for every delivery, so that a secret rotated in the admin is picked up at once.
    """
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        return []
    secrets = [tenant.webhook_secret]
    expires = tenant.previous_webhook_secret_expires_at
    if tenant.previous_webhook_secret and expires and expires > timezone.now():
        secrets.append(tenant.previous_webhook_secret)
    return [secret for secret in secrets if secret]


def verify(*, secrets: list[str], body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The event, if one of ``secrets`` signed it; raises ``WebhookVerificationError``."""
    last_error = WebhookVerificationError("the tenant has no webhook secret")
    for secret in secrets:
        try:
            event = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as exc:
            last_error = exc
            continue
        except ValueError as exc:  # undecodable body, a malformed signature header
            raise WebhookVerificationError(f"malformed delivery ({exc})") from exc
        if not isinstance(event, dict):
            raise WebhookVerificationError("the body is not a JSON object")
        return event
    raise last_error


def describe(event: dict[str, Any], *, webhook_id: str, attempt: str = "") -> str:
    """One line for a verified event: when, type, event id, and the object in brief."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    now = datetime.now(UTC).strftime("%H:%M:%S")
    parts = [now, "verified", str(event.get("type", "?")), str(event.get("id", webhook_id))]
    if data:
        parts.append(f"{data.get('id', '?')} {data.get('status', '?')}")
        if data.get("amount") is not None:
            parts.append(f"{data.get('amount')} {data.get('currency', '')}".strip())
        reason = data.get("failure_reason")
        if isinstance(reason, dict) and reason.get("code"):
            parts.append(f"{reason['code']}: {reason.get('message', '')}".strip())
    if attempt:
        parts.append(attempt)
    return "  ".join(parts)


def _handler_class(
    *, slug: str, write: Callable[[str], None], secrets_of: Callable[[str], list[str]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "webhook_listen"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            try:
                self._receive()
            finally:
                connection.close()  # each request runs in its own thread, with its own connection

        def _receive(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                write(f"REJECTED a delivery of {length} bytes (over {MAX_BODY_BYTES})")
                self._answer(413, {"error": "body too large"})
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            webhook_id = headers.get("webhook-id", "")
            try:
                event = verify(secrets=secrets_of(slug), body=body, headers=headers)
            except WebhookVerificationError as exc:
                # Printed before answering, so the line is out when the sender hears back.
                write(
                    f"REJECTED {webhook_id or 'a delivery without webhook-id'}: {exc} "
                    f"(checked with tenant {slug!r}'s webhook secret)"
                )
                self._answer(400, {"error": "signature verification failed"})
                return
            write(describe(event, webhook_id=webhook_id))
            self._answer(200, {"received": True})

        def do_GET(self) -> None:  # noqa: N802
            self._answer(405, {"error": "POST signed webhook events here"})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            """Quiet: the one line per event above says what matters."""

    return Handler


class WebhookListener:
    """The receiving server, startable in a thread (tests) or in the foreground (command)."""

    def __init__(
        self,
        *,
        slug: str,
        host: str,
        port: int,
        out: Writable,
        secrets_of: Callable[[str], list[str]] = tenant_secrets,
    ) -> None:
        self._lock = threading.Lock()
        self._out = out
        self._host = host
        handler = _handler_class(slug=slug, write=self._write, secrets_of=secrets_of)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.server.server_port}/webhooks"

    def _write(self, line: str) -> None:
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def start(self) -> WebhookListener:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Command(BaseCommand):
    help = (
        "Receive a tenant's merchant webhooks on 127.0.0.1, verify each with its webhook "
        "secret (Standard Webhooks) and print one line per event, like `stripe listen`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"the port to listen on (default {DEFAULT_PORT}, the demo tenant's webhook URL)",
        )
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="the address to listen on (default 127.0.0.1: this machine only)",
        )
        parser.add_argument("--tenant", default="demo", help="the tenant's slug (default demo)")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["tenant"]
        if not Tenant.objects.filter(slug=slug).exists():
            raise CommandError(
                f"No tenant {slug!r}: create it first (`make demo`, or `create_tenant {slug}`)."
            )
        try:
            listener = WebhookListener(
                slug=slug, host=options["host"], port=options["port"], out=self.stdout
            )
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (honcho, docker) stops it like Ctrl-C does; shutdown() must not run on
            # the thread that serves, hence the helper thread.
            signal.signal(
                signal.SIGTERM, lambda *_: threading.Thread(target=listener.server.shutdown).start()
            )
        tenant_url = Tenant.objects.filter(slug=slug).values_list("webhook_url", flat=True).get()
        self.stdout.write(
            f"Listening on {listener.url} for the webhooks of tenant {slug} "
            f"(its webhook URL: {tenant_url or 'not set'}); Ctrl-C stops."
        )
        try:
            listener.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            listener.server.server_close()
