"""An HTTP proxy in front of the MTN simulator that answers ``latency`` seconds late, as a
real MTN does (hundreds of milliseconds, seconds when degraded), and records when each
request started and ended. Threads, one per connection; every thread is a daemon.

What the simulator does to a request (a fault that drops the connection, a late answer)
reaches the gateway as it would without the proxy: a dropped upstream connection drops the
gateway's.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class LatencyProxy:
    """Forwards to ``upstream`` after ``latency`` seconds; records (start, end, method, path)."""

    def __init__(self, upstream: str, latency: float) -> None:
        self.latency = latency
        self.log: list[tuple[float, float, str, str]] = []
        self._lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                time.sleep(proxy.latency)
                upstream_conn = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=120
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                try:
                    upstream_conn.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream_conn.getresponse()
                    payload = answer.read()
                except (OSError, http.client.HTTPException):
                    # The simulator dropped it (a lost answer): drop ours too, unanswered.
                    self.close_connection = True
                    upstream_conn.close()
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream_conn.close()
                with proxy._lock:
                    proxy.log.append((started, time.monotonic(), self.command, self.path))

            do_GET = do_POST = do_PUT = _forward  # noqa: N815 - http.server's naming

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self) -> list[tuple[float, float, str, str]]:
        """Transaction calls (not tokens)."""
        with self._lock:
            return [entry for entry in self.log if "/token/" not in entry[3]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many workers' calls connect at once
