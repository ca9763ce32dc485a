"""The simulator's behaviour, independent of the socket plumbing: routing by MTN product,
the checks every product call passes through, and the timers behind delayed outcomes."""

from __future__ import annotations

import math
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import accountholder, auth, collection, control, disbursement, provisioning
from .callbacks import Callbacks
from .config import PRODUCTS, SandboxConfig
from .state import SandboxState
from .wire import Drop, Reply, error, not_found_path

# Headers recorded for each MTN call, so tests can see which simulator got what. The
# Authorization header is reduced to its scheme (and, for Basic, the API user).
_LOGGED_HEADERS = (
    "X-Target-Environment",
    "Ocp-Apim-Subscription-Key",
    "X-Reference-Id",
    "X-Callback-Url",
)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.state = SandboxState(config)
        self.stopping = threading.Event()
        self.callbacks = Callbacks(self)
        self._timers: list[threading.Timer] = []
        self.latency_seconds = config.latency_seconds
        # MTN calls being handled right now, and the most seen at once since the last reset
        # (a benchmark's check of the gateway's in-flight limit).
        self._load_lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._request_seq = 0  # numbers the request log, under state.lock

    # --- entry point ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Reply:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        if path.startswith("/_simulator/"):
            return control.route(self, method, path, body, split.query)
        query = parse_qs(split.query)
        received_at = time.time()
        with self._load_lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            # A slow MTN: this call waits, the server's other threads do not.
            if self.latency_seconds > 0:
                self.sleep(self.latency_seconds)
            try:
                reply = self._route(method, path, headers, body, query)
            except Drop:
                self._log_request(method, path, headers, None, received_at)  # answered nothing
                raise
        finally:
            with self._load_lock:
                self.in_flight -= 1
        self._log_request(method, path, headers, reply.status, received_at)
        return reply

    def _log_request(
        self, method: str, path: str, headers: Any, status: int | None, received_at: float
    ) -> None:
        sent = {name: headers.get(name) for name in _LOGGED_HEADERS if headers.get(name)}
        with self.state.lock:
            self._request_seq += 1
            self.state.requests.append(
                {
                    "seq": self._request_seq,
                    "method": method,
                    "path": path,
                    "status": status,
                    "reference_id": headers.get("X-Reference-Id"),
                    "headers": sent,
                    "auth": auth.describe_authorization(headers.get("Authorization")),
                    "received_at": received_at,
                    "at": time.time(),
                }
            )

    # --- load -------------------------------------------------------------------------------

    def set_latency(self, seconds: Any) -> float:
        """Make every later MTN call wait ``seconds`` (0 to 600) before it is handled."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
            raise ValueError("seconds must be a number")
        value = float(seconds)
        if not math.isfinite(value) or not 0 <= value <= 600:
            raise ValueError("seconds must be between 0 and 600")
        self.latency_seconds = value
        return value

    def load(self, *, reset_peak: bool = False) -> dict[str, Any]:
        """Calls in flight now and the most at once; ``reset_peak`` starts a new peak."""
        with self._load_lock:
            if reset_peak:
                self.peak_in_flight = self.in_flight
            return {
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "latency_seconds": self.latency_seconds,
            }

    def _route(
        self, method: str, path: str, headers: Any, body: bytes, query: dict[str, list[str]]
    ) -> Reply:
        faults = self.state.faults
        if faults.down:
            return error(503, "SERVICE_UNAVAILABLE")
        if "//" in path:
            # MTN's gateway matches paths exactly: an empty segment is no operation of its.
            return not_found_path()
        parts = [p for p in path.split("/") if p != ""]

        if parts[:2] == ["v1_0", "apiuser"]:
            return provisioning.route(self, method, parts[2:], headers, body, query)
        if not parts or parts[0] not in PRODUCTS:
            return not_found_path()
        product = parts[0]

        key_reply = auth.check_subscription_key(self, headers, product, query)
        if key_reply:
            return key_reply
        if self.state.take("rate_limit_next") or self.state.chance(faults.rate_limit_rate):
            seconds = max(int(faults.retry_after_seconds), 0)
            return Reply(
                429,
                {
                    "statusCode": 429,
                    "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                },
                {"Retry-After": str(seconds)},
            )

        rest = parts[1:]
        if rest == ["token"] and method == "POST":
            if not path.endswith("/"):
                return not_found_path()  # the trailing slash matters (section 3.1)
            return auth.issue_token(self, product, headers, body)

        if len(rest) < 2 or rest[0] != "v1_0":
            return not_found_path()
        user, auth_reply = auth.authorize(self, product, headers)
        if auth_reply:
            return auth_reply
        env_reply = auth.check_target_environment(self, headers)
        if env_reply:
            return env_reply

        after_version = rest[1:]
        products = {"collection": collection.route, "disbursement": disbursement.route}
        reply = products[product](self, method, after_version, user, headers, body)
        if reply is None:
            # MTN defines requesttopay/{id}/deliverynotification on each product's paths.
            reply = collection.route_notification(self, method, after_version, user, headers, body)
        if reply is None:
            reply = accountholder.route(self, method, after_version)
        return reply or not_found_path()

    # --- timers -----------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Wait (a timeout fault), but wake at once when the simulator stops."""
        self.stopping.wait(seconds)

    def schedule(self, delay: float, func: Any, *args: Any) -> None:
        timer = threading.Timer(delay, func, args=args)
        timer.daemon = True
        with self.state.lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def send_callback(self, ref: str, url: str, body: dict[str, Any]) -> None:
        self.callbacks.send(ref, url, body)

    def reset(self) -> None:
        with self.state.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        self.state.reset()
        self.latency_seconds = self.config.latency_seconds
        self.load(reset_peak=True)

    def stop(self) -> None:
        self.stopping.set()
        with self.state.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
