"""``manage.py mtn_sandbox`` runs the simulator in the foreground and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from mtn.client import MtnClient

from .conftest import fast_policy, sandbox_client_config

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_simulator/faults", timeout=0.5)
        except requests.ConnectionError:
            time.sleep(0.1)
        else:
            return
    raise AssertionError("simulator did not start")


def test_command_serves_mtn_and_stops_on_sigterm():
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "mtn_sandbox",
            "--port",
            str(port),
            "--delay-seconds",
            "0",
            "--reason-as-object",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_listening(port)
        config = sandbox_client_config(f"http://127.0.0.1:{port}")
        client = MtnClient(config, retry_policy=fast_policy(config))
        ref = uuid.uuid4()
        client.request_to_pay(
            reference_id=ref,
            amount="5",
            currency="EUR",
            external_id="cmd",
            payer_msisdn="46733123452",
            payer_message=None,
            payee_note=None,
            callback_url=None,
        )
        status = client.request_to_pay_status(reference_id=ref)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    assert (status.status, status.reason_code) == ("FAILED", "EXPIRED")
    assert status.reason_message
    assert process.returncode == 0, err.decode()
    assert b"listening on" in out
