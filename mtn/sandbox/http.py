"""Socket plumbing: a threaded HTTP/1.1 server in front of :class:`~.app.Sandbox`, the handle
tests hold, and :func:`start_sandbox`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .app import Sandbox
from .config import ProductCredentials, SandboxConfig
from .state import SandboxState
from .wire import Drop, error

logger = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections in a burst of callbacks.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like MTN behind APIM
    server_version = "MtnSandbox/1.0"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add
    # ~40 ms to every loopback call.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            reply = self.server.sandbox.handle(method, self.path, self.headers, body)
        except Drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        except Exception:
            logger.exception("MTN sandbox failed on %s %s", method, self.path)
            reply = error(500, "INTERNAL_PROCESSING_ERROR")
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logger.debug("sandbox %s - %s", self.address_string(), format % args)


class SandboxHandle:
    """A running simulator: ``base_url`` to point a client at, ``state`` to inspect."""

    def __init__(self, sandbox: Sandbox, server: _Server, thread: threading.Thread) -> None:
        self._sandbox = sandbox
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SandboxState:
        return self._sandbox.state

    @property
    def config(self) -> SandboxConfig:
        return self._sandbox.config

    def set_faults(self, **values: Any) -> dict[str, Any]:
        """Change faults at runtime (same keys as :class:`Faults`, plus ``seed``)."""
        return self._sandbox.state.set_faults(**values)

    def expire_tokens(self) -> int:
        return self._sandbox.state.expire_tokens()

    def set_latency(self, seconds: float) -> float:
        """Make every later MTN call wait ``seconds`` before it is answered."""
        return self._sandbox.set_latency(seconds)

    def load(self, *, reset_peak: bool = False) -> dict[str, Any]:
        """MTN calls in flight now, the most at once, and the latency."""
        return self._sandbox.load(reset_peak=reset_peak)

    def reset(self) -> None:
        self._sandbox.reset()

    def stop(self) -> None:
        self._sandbox.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve_until(self, event: threading.Event) -> None:
        """Block until ``event`` is set, then stop (used by the management command)."""
        try:
            while not event.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    target_environment: str | None = None,
    currency: str | None = None,
    collection: ProductCredentials | None = None,
    disbursement: ProductCredentials | None = None,
) -> SandboxHandle:
    """Start the simulator in a background thread; ``port=0`` picks a free port.

    The keyword arguments override ``config`` (market and accepted credentials), so that a
    test can start two simulators as two markets with different credentials at once:
    ``start_sandbox(target_environment="mtnuganda", collection=ProductCredentials(...))``.
    """
    config = config or SandboxConfig()
    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("target_environment", target_environment),
            ("collection", collection),
            ("disbursement", disbursement),
        )
        if value is not None
    }
    if target_environment is not None or currency is not None:
        # Re-derive the market's currency unless one is given.
        overrides["currency"] = currency
    if overrides:
        config = dataclasses.replace(config, **overrides)
    sandbox = Sandbox(config)
    server = _Server((host, port), sandbox)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.name = f"mtn-sandbox-{server.server_address[1]}"
    thread.start()
    return SandboxHandle(sandbox, server, thread)
