"""``manage.py mtn_sandbox`` runs the simulator in the foreground and stops on SIGTERM."""

from __future__ import annotations

import json
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
from django.core.management import call_command
from django.core.management.base import CommandError

from mtn.client import MtnClient, MtnCredentials
from mtn.errors import MtnAuthenticationError, MtnConfigurationError

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


def test_command_runs_as_another_market_with_its_own_credentials(tmp_path):
    port = free_port()
    credentials = {
        "collection": {
            "subscription_key": "ug-col-key",
            "api_user": "0b7c3f7e-1d2a-4c5b-9e8f-112233445566",
            "api_key": "ug-col-secret",
        }
    }
    credentials_file = tmp_path / "ug.json"
    credentials_file.write_text(json.dumps(credentials))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "mtn_sandbox",
            "--port",
            str(port),
            "--target-environment",
            "mtnuganda",
            "--currency",
            "ugx",
            "--credentials",
            str(credentials_file),
            "--provider-callback-host",
            "Pay.Example.com",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_listening(port)
        base_url = f"http://127.0.0.1:{port}"
        uganda = sandbox_client_config(
            base_url,
            target_environment="mtnuganda",
            collection=MtnCredentials(**credentials["collection"]),
        )
        client = MtnClient(uganda, retry_policy=fast_policy(uganda))
        ref = uuid.uuid4()
        client.request_to_pay(
            reference_id=ref,
            amount="1000",
            currency="UGX",
            external_id="ug",
            payer_msisdn="256772123456",
        )
        status = client.request_to_pay_status(reference_id=ref)
        with pytest.raises(MtnConfigurationError) as wrong_currency:
            client.request_to_pay(
                reference_id=uuid.uuid4(),
                amount="10",
                currency="EUR",
                external_id="ug",
                payer_msisdn="256772123456",
            )
        default_credentials = sandbox_client_config(base_url, target_environment="mtnuganda")
        with pytest.raises(MtnAuthenticationError):
            MtnClient(default_credentials, retry_policy=fast_policy(default_credentials)).get_token(
                "collection"
            )
        market = requests.get(f"{base_url}/_simulator/market", timeout=2).json()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    assert status.status == "SUCCESSFUL"
    assert wrong_currency.value.code == "INVALID_CURRENCY"
    assert market == {
        "target_environment": "mtnuganda",
        "currency": "UGX",
        "provisioning": False,
        "provider_callback_host": "pay.example.com",
    }
    assert process.returncode == 0, err.decode()
    assert b"'mtnuganda', UGX, callbacks to host 'pay.example.com' only" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--currency", "shillings"], "--currency"),
        (["--target-environment", "MTN Uganda"], "--target-environment"),
        (["--credentials", "/nonexistent/creds.json"], "--credentials"),
    ],
)
def test_command_refuses_bad_market_options_before_listening(args, message):
    with pytest.raises(CommandError) as info:
        call_command("mtn_sandbox", "--port", "0", *args)

    assert message in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"collection": {"subscription_key": "k", "api_user": "u"}},
        {"remittance": {"subscription_key": "k", "api_user": "u", "api_key": "s"}},
        {"collection": {"subscription_key": "", "api_user": "u", "api_key": "s"}},
        [],
    ],
)
def test_command_refuses_malformed_credentials(tmp_path, payload):
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(payload))

    with pytest.raises(CommandError) as info:
        call_command("mtn_sandbox", "--port", "0", "--credentials", str(path))

    assert "--credentials" in str(info.value)
