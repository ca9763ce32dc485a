"""The dispatcher for real, on PostgreSQL (issue 15's proof): reads and callbacks answered
while every MTN call hangs, two worker processes within an account's limits, and a worker
SIGKILLed mid-batch that loses and repeats nothing.

MTN is the simulator behind ``LatencyProxy``, which answers after a delay (as a real MTN
does) and records when each request started and ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from payments.models import Payment
from payments.states import Submission
from shell.worker import Worker
from tests.latency_proxy import LatencyProxy
from webhooks.models import MtnCallback

from .conftest import create, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

MANAGE = Path(django_settings.BASE_DIR) / "manage.py"


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


class HangingMtn:
    """Accepts connections and never answers: every MTN call hangs until ``close``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self.closed = False
        self._lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self.closed:
                    _reset(conn)
                else:
                    self.accepted.append(conn)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for conn in self.accepted:
                _reset(conn)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _reset(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.fixture
def proxied_sim(sim, settings) -> Iterator[LatencyProxy]:
    proxy = LatencyProxy(sim.base_url, latency=0.3)
    settings.MTN_BASE_URL = proxy.url
    yield proxy
    proxy.close()


def _worker_env(base_url: str, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}",
        "MTN_BASE_URL": base_url,
        "MTN_CALLBACK_URL": "",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(MANAGE), "run_worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _create_many(shop, count: int) -> list[str]:
    return [create(shop.client, submit=False).json()["id"] for _ in range(count)]


def _submitted(ids: list[str]) -> int:
    return Payment.objects.filter(pk__in=ids, submission=Submission.SUBMITTED).count()


# --- reads and callbacks while MTN hangs ------------------------------------------------------


def test_reads_and_callbacks_are_answered_while_every_mtn_call_hangs(shop, settings, sim):
    hanging = HangingMtn()
    settings.MTN_BASE_URL = hanging.url
    settings.MTN_CONNECT_TIMEOUT = 2.0
    settings.MTN_READ_TIMEOUT = 60.0
    worker = Worker()
    thread = threading.Thread(target=worker.run_forever, kwargs={"idle_sleep": 0.05})
    thread.start()
    try:
        ids = _create_many(shop, 3)
        # The dispatcher's calls are in flight, each hanging on MTN.
        assert wait_until(lambda: len(hanging.accepted) >= 3, timeout=10, drive_callbacks=False)

        read = shop.client.get(f"/api/v1/payments/{ids[0]}")
        payment = Payment.objects.get(pk=ids[0])
        callback = shop.client.post(
            f"/api/v1/webhooks/mtn/{payment.callback_token}",
            json.dumps({"externalId": ids[0], "status": "SUCCESSFUL", "amount": "12.5"}),
            content_type="application/json",
        )
        created = create(shop.client, submit=False)

        assert read.status_code == 200
        assert read.json()["status"] == "PENDING"
        assert callback.status_code == 200
        assert callback.json() == {"status": "ok"}
        assert MtnCallback.objects.filter(object_id=payment.pk).exists()
        assert created.status_code == 201
        assert thread.is_alive()  # still waiting on MTN all along
    finally:
        worker.stop_event.set()
        worker.wake.set()
        hanging.close()  # the calls in flight fail; the worker records them and stops
        thread.join(timeout=30)
    assert not thread.is_alive()
    # Nothing was decided on a guess: the hung calls' outcome is unknown.
    assert not Payment.objects.exclude(status="PENDING").exists()


# --- two worker processes within one account's limits -----------------------------------------


def test_two_workers_never_exceed_the_accounts_limits(shop, proxied_sim, settings):
    in_flight, rate = 3, 8
    ids = _create_many(shop, 40)
    env = _worker_env(proxied_sim.url, MTN_MAX_IN_FLIGHT=str(in_flight), MTN_RATE_LIMIT=str(rate))
    workers = [_start_worker(env) for _ in range(2)]
    try:
        assert wait_until(lambda: _submitted(ids) == len(ids), timeout=60, drive_callbacks=False)
    finally:
        for worker in workers:
            _stop(worker)

    calls = proxied_sim.calls()
    posts = [call for call in calls if call[2] == "POST"]
    assert len(posts) == len(ids)  # each sent once, by one of the two
    events = sorted(
        [(start, 1) for start, _, _, _ in calls] + [(end, -1) for _, end, _, _ in calls]
    )
    concurrent = peak = 0
    for _, step in events:
        concurrent += step
        peak = max(peak, concurrent)
    assert peak <= in_flight, sorted(calls)
    starts = sorted(start for start, _, _, _ in calls)
    # Over any second, at most a second's worth of calls and the limiter's small burst.
    burst = max(1, int(rate * 0.1))
    for index, start in enumerate(starts):
        within = [s for s in starts[index:] if s - start < 1.0]
        assert len(within) <= rate + burst, (len(within), rate)


# --- SIGKILL mid-batch ----------------------------------------------------------------------


def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(shop, sim, proxied_sim, settings):
    ids = _create_many(shop, 30)
    env = _worker_env(proxied_sim.url, MTN_MAX_IN_FLIGHT="4", MTN_RATE_LIMIT="20")
    worker = _start_worker(env)
    try:
        assert wait_until(lambda: _submitted(ids) >= 8, timeout=60, drive_callbacks=False)
    finally:
        _stop(worker, signal.SIGKILL)  # mid-batch: calls in flight, rows leased
    assert _submitted(ids) < len(ids)

    # Its leases run out (moved here instead of waiting a minute); another worker takes over.
    Payment.objects.filter(pk__in=ids, submission=Submission.QUEUED).update(
        next_attempt_at=timezone.now()
    )
    Worker().drain()

    assert _submitted(ids) == len(ids)
    for payment in Payment.objects.filter(pk__in=ids):
        tx = sim.state.transaction(payment.mtn_reference_id)
        assert tx is not None, payment.pk  # nothing lost
        assert tx["post_count"] == 1, payment.pk  # nothing created twice (a resend is a 409)
    assert len(sim.state.all_transactions()) == len(ids)
