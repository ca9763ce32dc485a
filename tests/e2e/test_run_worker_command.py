"""``manage.py run_worker``: ``--once`` does what is due, prints JSON, exits 0; SIGTERM ends it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from payments.models import Payment
from payments.states import Submission

from .conftest import create, make_due

pytestmark = pytest.mark.e2e

MANAGE = Path(django_settings.BASE_DIR) / "manage.py"


@pytest.fixture(scope="session")
def worker_env(tmp_path_factory) -> dict[str, str]:
    """Environment for a worker subprocess: its own migrated SQLite file, nothing due."""
    db_file = tmp_path_factory.mktemp("worker") / "worker.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_file}",
        "MTN_BASE_URL": "http://127.0.0.1:9",  # never called: nothing is due
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, str(MANAGE), "migrate", "-v", "0"],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    return env


def test_run_worker_once_exits_zero_and_prints_json(worker_env):
    result = subprocess.run(
        [sys.executable, str(MANAGE), "run_worker", "--once"],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"done": {}}


def test_run_worker_once_submits_and_polls_what_is_due(sim, shop, settings):
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    sim.set_faults(down=True)
    payment = Payment.objects.get(pk=create(shop.client).json()["id"])
    assert payment.submission == Submission.QUEUED
    sim.set_faults(down=False)
    make_due(payment)
    out = io.StringIO()

    call_command("run_worker", "--once", stdout=out)

    done = json.loads(out.getvalue())["done"]
    assert done["payment.submitted"] == 1
    assert done["payment.polled"] == 1
    assert done["webhook.delivered_succeeded"] == 1
    payment.refresh_from_db()
    assert payment.status == "SUCCESSFUL"
    assert sim.state.post_count(payment.mtn_reference_id) == 1


def test_sigterm_stops_run_worker_cleanly(worker_env):
    process = subprocess.Popen(
        [sys.executable, str(MANAGE), "run_worker", "--idle-sleep", "0.1"],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        started = _wait_until(lambda: any("worker started" in line for line in lines), 20)
        assert started, "".join(lines)
        time.sleep(0.3)  # let it go round its loop at least once

        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    stderr = "".join(lines)

    assert returncode == 0, stderr
    assert "worker stopped" in stderr
    assert "Traceback" not in stderr


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
