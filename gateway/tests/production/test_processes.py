"""The compose file's commands, run here as processes with the production settings.

migrate, then gunicorn (with gunicorn.conf.py) and run_worker side by side, exactly as
docker-compose.yml starts them, with DEBUG off; then the probes and metrics are read over
loopback and everything is stopped with SIGTERM, as ``docker compose stop`` does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import pytest

from gateway.tests.production.helpers import (
    BASE_DIR,
    compose_command,
    compose_environment,
    free_port,
    on_this_machine,
    production_secrets,
)

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "scrape-" + secrets.token_urlsafe(16)

# Variables a developer's shell may hold that would change what is under test.
_CLEARED = {
    "DEBUG",
    *production_secrets(),
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "WORKER_METRICS_PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_BIND",
    "PORT",
}


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """A fresh, empty database: SQLite, or a scratch PostgreSQL database when CI uses one."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    import psycopg

    params = dj_database_url.parse(configured)
    scratch = f"momo_production_check_{secrets.token_hex(4)}"
    connect = {
        "host": params["HOST"] or None,
        "port": params["PORT"] or None,
        "user": params["USER"] or None,
        "password": params["PASSWORD"] or None,
        "dbname": params["NAME"],
        "autocommit": True,
    }
    with psycopg.connect(**connect) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        yield configured.rsplit("/", 1)[0] + "/" + scratch
    finally:
        with psycopg.connect(**connect) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _environment(service: str, **overrides: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    environment.update(compose_environment(service))
    if os.environ.get("REDIS_URL"):
        environment["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        environment.pop("REDIS_URL", None)  # compose's redis host does not exist here
    environment.update(overrides)
    return environment


def _fetch(url: str, token: str | None = None, timeout: float = 5.0, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - http only
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _get(url: str, token: str | None = None, timeout: float = 5.0, headers: dict | None = None):
    status, _, body = _fetch(url, token, timeout, headers)
    return status, body.decode()


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode}:\n{log.read_text()}")
        try:
            _get(url, timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {seconds}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen, seconds: float = 15.0) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=seconds)
    return code, time.monotonic() - started


def _json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_compose_commands_migrate_serve_and_work_with_production_settings(database_url, tmp_path):
    web_port, worker_port = free_port(), free_port()
    common = {
        "DEBUG": "false",
        **production_secrets(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "METRICS_TOKEN": METRICS_TOKEN,
        "STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONUNBUFFERED": "1",
    }
    # What the image's build stage does (Dockerfile), into a temporary STATIC_ROOT.
    collectstatic = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=BASE_DIR,
        env=_environment("web", **common),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert collectstatic.returncode == 0, collectstatic.stderr
    migrate = subprocess.run(
        on_this_machine(compose_command("migrate")),
        cwd=BASE_DIR,
        env=_environment("migrate", **common),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr

    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    processes: list[subprocess.Popen] = []
    try:
        with web_log.open("w") as web_out, worker_log.open("w") as worker_out:
            web = subprocess.Popen(
                on_this_machine(compose_command("web")),
                cwd=BASE_DIR,
                env=_environment(
                    "web",
                    **common,
                    GUNICORN_BIND=f"127.0.0.1:{web_port}",
                    WEB_CONCURRENCY="2",
                    GUNICORN_THREADS="2",
                    PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
                ),
                stdout=web_out,
                stderr=subprocess.STDOUT,
            )
            processes.append(web)
            worker = subprocess.Popen(
                on_this_machine(compose_command("worker")),
                cwd=BASE_DIR,
                env=_environment(
                    "worker",
                    **common,
                    WORKER_METRICS_PORT=str(worker_port),
                    WORKER_METRICS_ADDR="127.0.0.1",
                ),
                stdout=worker_out,
                stderr=subprocess.STDOUT,
            )
            processes.append(worker)

            base = f"http://127.0.0.1:{web_port}"
            _wait_for(f"{base}/healthz", web, web_log)
            _wait_for(f"http://127.0.0.1:{worker_port}/metrics", worker, worker_log)

            assert _get(f"{base}/healthz") == (200, '{"status": "ok"}')
            assert _get(f"{base}/readyz") == (200, '{"status": "ok"}')
            # The API behind a TLS-terminating proxy (SECURE_PROXY_SSL_HEADER).
            https = {"X-Forwarded-Proto": "https"}
            status, body = _get(f"{base}/api/v1/payments", headers=https)
            assert (status, json.loads(body)["error"]["code"]) == (401, "authentication_failed")
            # Swagger UI's files: hashed names, compressed, cached for ever, by WhiteNoise.
            status, docs = _get(f"{base}/api/docs/", headers=https)
            assert status == 200
            stylesheet = re.search(r'/static/[^"]+\.[0-9a-f]{12}\.css', docs)[0]
            status, headers, _ = _fetch(
                f"{base}{stylesheet}", headers={"Accept-Encoding": "gzip", **https}
            )
            assert status == 200
            assert headers["Content-Encoding"] == "gzip"
            assert "immutable" in headers["Cache-Control"]
            assert _get(f"{base}/metrics")[0] == 401
            status, scrape = _get(f"{base}/metrics", token=METRICS_TOKEN)
            assert status == 200
            assert "momo_database_up 1.0" in scrape
            assert 'momo_due_work{kind="payment"} 0.0' in scrape
            # gunicorn's workers share their counters through PROMETHEUS_MULTIPROC_DIR.
            assert "momo_webhook_delivery_duration_seconds_count 0.0" in scrape
            assert list((tmp_path / "prometheus").glob("*.db"))
            status, worker_scrape = _get(
                f"http://127.0.0.1:{worker_port}/metrics", token=METRICS_TOKEN
            )
            assert status == 200
            assert "# TYPE momo_mtn_calls_total counter" in worker_scrape
            assert _get(f"http://127.0.0.1:{worker_port}/metrics")[0] == 401

            stopped = [_stop(process) for process in (web, worker)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    for (code, seconds), name in zip(stopped, ("gunicorn", "run_worker"), strict=True):
        assert code == 0, f"{name} exited {code}"
        assert seconds < 10, f"{name} took {seconds:.1f}s to stop"

    web_lines, worker_lines = _json_lines(web_log), _json_lines(worker_log)
    assert {"gunicorn.error", "gateway.access"} <= {line["logger"] for line in web_lines}
    assert any(line["message"] == "worker started" for line in worker_lines)
    assert any(line["message"] == "worker stopped" for line in worker_lines)
    for line in web_lines + worker_lines:
        assert {"time", "level", "logger", "message", "request_id", "tenant"} <= set(line)
    access = [line for line in web_lines if line["logger"] == "gateway.access"]
    assert all(line["request_id"] for line in access)
    assert METRICS_TOKEN not in web_log.read_text() + worker_log.read_text()
