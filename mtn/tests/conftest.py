"""Shared fixtures for the MTN client and simulator tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.cache import cache

from mtn.client import MtnClient, MtnConfig, MtnCredentials
from mtn.retry import RetryPolicy
from mtn.sandbox import SandboxConfig, SandboxHandle, start_sandbox

UNIT_BASE_URL = "https://mtn.test"
CALLBACK_HOST = "127.0.0.1"  # CallbackReceiver's


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@dataclass
class SleepRecorder:
    """Stands in for time.sleep in retry policies: records the waits, sleeps not at all."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def unit_config() -> MtnConfig:
    return MtnConfig(
        base_url=UNIT_BASE_URL,
        target_environment="sandbox",
        collection=MtnCredentials("col-sub-key", "col-user", "col-api-key"),
        disbursement=MtnCredentials("dis-sub-key", "dis-user", "dis-api-key"),
        connect_timeout=1.0,
        read_timeout=2.0,
        max_tries=3,
        max_seconds=5.0,
    )


@pytest.fixture
def unit_client(unit_config: MtnConfig, sleeps: SleepRecorder) -> MtnClient:
    policy = RetryPolicy(
        max_tries=3, max_seconds=5.0, base_delay=0.01, max_delay=0.05, sleep=sleeps
    )
    return MtnClient(unit_config, retry_policy=policy)


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    # Its API users' providerCallbackHost is where CallbackReceiver listens, as a gateway's
    # would be registered: MTN refuses an X-Callback-Url on any other host.
    handle = start_sandbox(
        SandboxConfig(delay_seconds=0.3, seed=1, provider_callback_host=CALLBACK_HOST)
    )
    yield handle
    handle.stop()


def sandbox_client_config(base_url: str, **overrides: Any) -> MtnConfig:
    config = MtnConfig.from_settings()
    values = {
        "base_url": base_url,
        "target_environment": config.target_environment,
        "collection": config.collection,
        "disbursement": config.disbursement,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "max_tries": 4,
        "max_seconds": 5.0,
    }
    values.update(overrides)
    return MtnConfig(**values)


def fast_policy(config: MtnConfig) -> RetryPolicy:
    return RetryPolicy(
        max_tries=config.max_tries,
        max_seconds=config.max_seconds,
        base_delay=0.005,
        max_delay=0.02,
        max_retry_after=0.05,
    )


@pytest.fixture
def mtn_client(sandbox: SandboxHandle) -> MtnClient:
    config = sandbox_client_config(sandbox.base_url)
    return MtnClient(config, retry_policy=fast_policy(config))


@dataclass
class ReceivedCallback:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class CallbackReceiver:
    """A tiny HTTP server standing in for the gateway's callback door."""

    def __init__(self) -> None:
        self.received: list[ReceivedCallback] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.arrived:
                    receiver.received.append(
                        ReceivedCallback(self.command, self.path, dict(self.headers), body)
                    )
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = _record  # noqa: N815
            do_POST = _record  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer((CALLBACK_HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.base_url = f"http://{CALLBACK_HOST}:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedCallback]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.stop()
