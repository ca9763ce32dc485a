"""A slow MTN: the simulator's latency holds up only the calls it delays, can be changed
while it runs, and a payment can settle some time after MTN accepted it, then call back."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from mtn.sandbox import SandboxConfig, start_sandbox

from .conftest import CALLBACK_HOST
from .test_sandbox_e2e import client_for, pay

pytestmark = pytest.mark.e2e


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_latency_holds_each_call_without_blocking_others_or_the_control_api():
    handle = start_sandbox(SandboxConfig(delay_seconds=0))
    client = client_for(handle, read_timeout=120.0)
    client.get_token("collection")  # minted before MTN turns slow
    base = f"{handle.base_url}/_simulator"
    outcomes: list[object] = []

    def call() -> None:
        try:
            outcomes.append(pay(client)[1])
        except Exception as exc:  # noqa: BLE001 - the simulator stopped under it; recorded
            outcomes.append(exc)

    try:
        changed = requests.post(f"{base}/latency", json={"seconds": 60}, timeout=2)
        callers = [threading.Thread(target=call, daemon=True) for _ in range(3)]
        for caller in callers:
            caller.start()

        # All three wait inside the simulator at once: it is threaded.
        assert wait_until(lambda: handle.load()["in_flight"] == 3)
        # Meanwhile the control API answers, and nothing was created yet.
        load = requests.get(f"{base}/load", timeout=2).json()
        assert load == {"in_flight": 3, "peak_in_flight": 3, "latency_seconds": 60.0}
        assert requests.get(f"{base}/latency", timeout=2).json() == {"seconds": 60.0}
        assert handle.state.all_transactions() == []
        assert changed.json() == {"seconds": 60.0}
    finally:
        handle.stop()  # wakes the waiting calls
    for caller in callers:
        caller.join(timeout=10)
    assert not any(caller.is_alive() for caller in callers)
    assert len(outcomes) == 3


def test_latency_is_logged_between_arrival_and_answer_and_can_be_turned_off():
    handle = start_sandbox(SandboxConfig(delay_seconds=0, latency_seconds=0.2))
    client = client_for(handle, read_timeout=5.0)
    try:
        ref, _ = pay(client)
        [post] = [r for r in handle.state.request_log() if r["path"].endswith("/requesttopay")]
        assert post["reference_id"] == str(ref)
        # Arrival is logged before the wait, the answer after it.
        assert post["at"] - post["received_at"] >= 0.2
        assert handle.load()["peak_in_flight"] == 1

        handle.set_latency(0)
        second, _ = pay(client)
        after = requests.get(
            f"{handle.base_url}/_simulator/requests",
            params={"after": post["seq"], "method": "POST", "path": "/collection/v1_0/"},
            timeout=2,
        ).json()["results"]
        assert [r["reference_id"] for r in after] == [str(second)]
        assert handle.load()["latency_seconds"] == 0

        reset_peak = requests.post(f"{handle.base_url}/_simulator/load/reset-peak", timeout=2)
        assert reset_peak.json()["peak_in_flight"] == 0
    finally:
        handle.stop()


@pytest.mark.parametrize(
    "body",
    [{"seconds": -1}, {"seconds": "soon"}, {"seconds": True}, {"seconds": 601}, {}, [2]],
)
def test_bad_latency_is_refused_and_changes_nothing(body):
    handle = start_sandbox(SandboxConfig(latency_seconds=0.1))
    try:
        reply = requests.post(f"{handle.base_url}/_simulator/latency", json=body, timeout=2)
        assert reply.status_code == 400
        assert handle.load()["latency_seconds"] == 0.1
    finally:
        handle.stop()


def test_reset_restores_the_start_latency():
    handle = start_sandbox(SandboxConfig(latency_seconds=0.5))
    try:
        handle.set_latency(3)
        requests.post(f"{handle.base_url}/_simulator/reset", timeout=2)
        assert handle.load()["latency_seconds"] == 0.5
    finally:
        handle.stop()


def test_payment_settles_the_delay_after_mtn_accepted_it_then_calls_back(callback_receiver):
    """What the benchmark's CPU-per-payment run relies on: …454 with --delay-seconds 0.3
    is PENDING when accepted and SUCCESSFUL, with its callback, 0.3 s later (with the
    latency, 0.3 s after the late answer)."""
    handle = start_sandbox(
        SandboxConfig(delay_seconds=0.3, latency_seconds=0.1, provider_callback_host=CALLBACK_HOST)
    )
    client = client_for(handle, read_timeout=5.0)
    try:
        ref, _ = pay(client, "46733123454", callback_url=f"{callback_receiver.base_url}/cb")
        accepted = handle.state.transaction(ref)
        assert accepted is not None
        assert accepted["status"] == "PENDING"

        [callback] = callback_receiver.wait_for(1)

        assert callback.json()["status"] == "SUCCESSFUL"
        # The simulator logs a callback once the receiver has answered it.
        assert wait_until(lambda: len(handle.state.callback_log()) == 1)
        [sent] = handle.state.callback_log()
        assert sent["outcome"] == "sent"
        assert sent["at"] - accepted["created_at"] >= 0.3
        [post] = [r for r in handle.state.request_log() if r["path"].endswith("/requesttopay")]
        assert accepted["created_at"] - post["received_at"] >= 0.1
    finally:
        handle.stop()


def test_command_passes_latency_and_refuses_a_bad_one(monkeypatch):
    started: dict[str, object] = {}

    class Stopped(Exception):
        pass

    def fake_start(config, host, port):
        started["latency"] = config.latency_seconds
        raise Stopped

    monkeypatch.setattr("mtn.management.commands.mtn_sandbox.start_sandbox", fake_start)
    with pytest.raises(Stopped):
        call_command("mtn_sandbox", "--latency", "0.5", "--port", "0")
    assert started == {"latency": 0.5}

    started.clear()
    with pytest.raises(CommandError, match="--latency"):
        call_command("mtn_sandbox", "--latency", "-1", "--port", "0")
    assert started == {}
