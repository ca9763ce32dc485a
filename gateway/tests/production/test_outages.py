"""gunicorn and run_worker, with production settings, riding out Redis and PostgreSQL outages.

Both services are reached through a ``TcpProxy`` (tests/proxy.py) that the test cuts,
blackholes and restores; the machine's own PostgreSQL and Redis stay up. The processes are
never restarted: they must recover by themselves. MTN is unreachable on purpose (a closed
port), so creates answer 201 PENDING at once and nothing here waits on it.

Also here, because they need a real gunicorn: callback bodies sent chunked.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
import pytest
import requests

from gateway.tests.production.helpers import BASE_DIR, free_port, production_secrets
from tests.proxy import TcpProxy
from webhooks.signing import inbound_signature

pytestmark = pytest.mark.e2e

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
_CLEARED = {
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "LOG_FORMAT",
    "METRICS_TOKEN",
    "PROMETHEUS_MULTIPROC_DIR",
    "WORKER_METRICS_PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_BIND",
    "GUNICORN_THREADS",
    "PORT",
    "MTN_CALLBACK_URL",
    "MTN_BASE_URL",
    *production_secrets(),
}


@dataclass
class Stack:
    base: str
    tenant: str
    api_key: str
    env: dict[str, str]
    database_url: str  # direct, for the test's own reads
    db_proxy: TcpProxy | None  # None on SQLite: nothing to cut
    redis_proxy: TcpProxy
    real_redis: bool
    web_log: Path
    worker_log: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def headers(self, api_key: str | None = None, tenant: str | None = None) -> dict[str, str]:
        return {"X-API-Key": api_key or self.api_key, "X-Tenant-ID": tenant or self.tenant}

    def create(self, key: str, **headers: str) -> requests.Response:
        body = {"amount": 1000, "currency": "UGX", "payer": "256772123456", "reference": key}
        return requests.post(
            f"{self.base}/api/v1/payments",
            json=body,
            headers={**self.headers(), "Idempotency-Key": key, **headers},
            timeout=15,
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.base}{path}", timeout=15, **kwargs)

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        if self.database_url.startswith("sqlite:"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(_libpq(self.database_url), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def callback_token(self, payment_id: str) -> str:
        # SQLite stores a UUID as 32 hex digits, PostgreSQL as a uuid.
        key = payment_id.replace("-", "") if self.database_url.startswith("sqlite:") else payment_id
        return self.rows("SELECT callback_token FROM payments_payment WHERE id = %s", key)[0][0]

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def _libpq(url: str) -> str:
    params = dj_database_url.parse(url)
    parts = {
        "host": params["HOST"],
        "port": params["PORT"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "dbname": params["NAME"],
    }
    return " ".join(f"{key}={value}" for key, value in parts.items() if value)


def _wait(predicate, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} within {seconds}s" + (f":\n{log.read_text()[-4000:]}" if log else ""))


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("outages")
    configured = os.environ.get("DATABASE_URL", "")
    scratch_admin = None
    db_proxy = None
    if configured.startswith(("postgres://", "postgresql://")):
        import psycopg

        scratch = f"momo_outage_check_{secrets.token_hex(4)}"
        scratch_admin = _libpq(configured)
        with psycopg.connect(scratch_admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{scratch}"')
        database_url = configured.rsplit("/", 1)[0] + "/" + scratch
        parsed = urlparse(database_url)
        db_proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
        app_database_url = database_url.replace(
            f"{parsed.hostname}:{parsed.port or 5432}", f"127.0.0.1:{db_proxy.port}"
        )
        if parsed.port is None:
            app_database_url = database_url.replace(
                f"@{parsed.hostname}/", f"@127.0.0.1:{db_proxy.port}/"
            )
    else:
        scratch = None
        database_url = app_database_url = f"sqlite:///{workdir / 'gateway.sqlite3'}"

    redis_url = os.environ.get("REDIS_URL", "")
    real_redis = redis_url.startswith("redis://")
    redis = urlparse(redis_url if real_redis else "redis://127.0.0.1:9/0")
    redis_proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
    if not real_redis:
        redis_proxy.cut()  # no Redis here: unreachable from the start
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(
        {
            "DEBUG": "false",
            **production_secrets(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": app_database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}{redis.path or '/0'}",
            "LOG_FORMAT": "plain",
            "PYTHONUNBUFFERED": "1",
            "MTN_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens: unreachable
            "MTN_CALLBACK_URL": f"http://127.0.0.1:{web_port}",
            "MTN_SUBMIT_MAX_TRIES": "1",
            "MTN_CONNECT_TIMEOUT": "0.5",
            "MTN_READ_TIMEOUT": "0.5",
            "DB_CONNECT_TIMEOUT": "2",
        }
    )
    stack = Stack(
        base=f"http://127.0.0.1:{web_port}",
        tenant="acme",
        api_key="",
        env=env,
        database_url=database_url,
        db_proxy=db_proxy,
        redis_proxy=redis_proxy,
        real_redis=real_redis,
        web_log=workdir / "web.log",
        worker_log=workdir / "worker.log",
    )
    try:
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.api_key = json.loads(stack.manage("create_tenant", "acme", "--name", "Acme"))[
            "api_key"
        ]
        with stack.web_log.open("w") as web_out, stack.worker_log.open("w") as worker_out:
            stack.processes.append(
                subprocess.Popen(  # noqa: S603 - our own command
                    [GUNICORN, "--config", "gunicorn.conf.py"],
                    cwd=BASE_DIR,
                    env={
                        **env,
                        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
                        "WEB_CONCURRENCY": "1",
                        "GUNICORN_THREADS": "2",
                    },
                    stdout=web_out,
                    stderr=subprocess.STDOUT,
                )
            )
            stack.processes.append(
                subprocess.Popen(  # noqa: S603 - our own command
                    [sys.executable, "manage.py", "run_worker", "--idle-sleep", "0.2"],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=worker_out,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait(lambda: stack.get("/readyz").status_code == 200, 60, "no /readyz", stack.web_log)
        yield stack
    finally:
        for process in stack.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in stack.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        redis_proxy.close()
        if db_proxy is not None:
            db_proxy.close()
        if scratch is not None:
            import psycopg

            with psycopg.connect(scratch_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "service_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def chunks(raw: bytes, size: int = 5) -> Iterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


# --- chunked bodies through gunicorn -------------------------------------------------------


def test_chunked_callbacks_are_read_on_both_doors_through_gunicorn(stack):
    payment = stack.create("chunked-1")
    assert payment.status_code == 201, payment.text
    payment_id = payment.json()["id"]
    token = stack.callback_token(payment_id)
    signed = json.dumps({"externalId": "no-such-payment", "status": "SUCCESSFUL"}).encode()
    on_token = json.dumps({"externalId": payment_id, "status": "SUCCESSFUL"}).encode()

    signed_answer = requests.post(
        f"{stack.base}/api/v1/webhooks/mtn",
        data=chunks(signed),
        headers={"X-Signature-256": inbound_signature(stack.env["MTN_WEBHOOK_SECRET"], signed)},
        timeout=15,
    )
    token_answer = requests.put(
        f"{stack.base}/api/v1/webhooks/mtn/{token}", data=chunks(on_token), timeout=15
    )

    for answer in (signed_answer, token_answer):
        assert answer.request.headers["Transfer-Encoding"] == "chunked"
        assert answer.status_code == 200, answer.text  # the signature covers the real body
    stored = {row[0] for row in stack.rows("SELECT raw_body FROM webhooks_mtncallback")}
    assert {signed.decode(), on_token.decode()} <= stored


def test_an_oversized_chunked_callback_is_413_through_gunicorn(stack):
    raw = b'{"pad": "' + b"a" * (64 * 1024) + b'"}'
    before = stack.rows("SELECT count(*) FROM webhooks_mtncallback")[0][0]

    answer = requests.post(f"{stack.base}/api/v1/webhooks/mtn", data=chunks(raw, 4096), timeout=15)

    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert stack.rows("SELECT count(*) FROM webhooks_mtncallback")[0][0] == before


# --- Redis ---------------------------------------------------------------------------------


def test_with_redis_unreachable_the_api_answers_and_rate_limits_fail_open(stack):
    tight = json.loads(stack.manage("create_tenant", "tight", "--name", "T", "--rate-limit", "2/d"))
    headers = stack.headers(tight["api_key"], "tight")
    stack.redis_proxy.blackhole()  # a Redis that accepts and never answers: the worst case
    try:
        answers = [stack.get("/api/v1/payments", headers=headers).status_code for _ in range(6)]
        created = stack.create("redis-down-1")
        ready = stack.get("/readyz")
    finally:
        stack.redis_proxy.restore() if stack.real_redis else stack.redis_proxy.cut()

    assert answers == [200] * 6  # over the tenant's 2/d: the limit failed open
    assert created.status_code == 201, created.text
    assert ready.status_code == 200
    log = stack.web_log.read_text()
    assert log.count("Redis cannot be reached") == 1  # one process, one line a minute
    assert "Traceback" not in log


def test_once_redis_is_back_rate_limits_hold_again_without_a_restart(stack):
    if not stack.real_redis:
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    tight = json.loads(
        stack.manage("create_tenant", "tight2", "--name", "T", "--rate-limit", "1/d")
    )
    headers = stack.headers(tight["api_key"], "tight2")
    stack.redis_proxy.cut()
    assert stack.get("/api/v1/payments", headers=headers).status_code == 200
    stack.redis_proxy.restore()

    # Within the circuit breaker's 5 s the process tries Redis again, and counts there.
    _wait(
        lambda: stack.get("/api/v1/payments", headers=headers).status_code == 429,
        30,
        "the rate limit did not come back",
        stack.web_log,
    )
    assert "Redis is reachable again" in stack.web_log.read_text()


# --- PostgreSQL ----------------------------------------------------------------------------


def test_postgres_cut_then_restored_503s_then_recovers_losing_nothing(stack):
    if stack.db_proxy is None:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    before = [stack.create(f"before-{index}") for index in range(3)]
    assert [r.status_code for r in before] == [201] * 3
    token = stack.callback_token(before[0].json()["id"])
    callback = json.dumps({"externalId": before[0].json()["id"], "status": "SUCCESSFUL"})

    stack.db_proxy.cut()
    try:
        during_list = stack.get("/api/v1/payments", headers=stack.headers())
        during_create = stack.create("during-outage")
        during_signed = requests.post(
            f"{stack.base}/api/v1/webhooks/mtn",
            data=callback,
            headers={
                "X-Signature-256": inbound_signature(
                    stack.env["MTN_WEBHOOK_SECRET"], callback.encode()
                )
            },
            timeout=15,
        )
        during_token = requests.post(
            f"{stack.base}/api/v1/webhooks/mtn/{token}", data=callback, timeout=15
        )
        during_ready = stack.get("/readyz")
        during_health = stack.get("/healthz")
        _wait(
            lambda: "cannot be reached" in stack.worker_log.read_text(),
            20,
            "the worker did not notice the outage",
            stack.worker_log,
        )
    finally:
        stack.db_proxy.restore()

    for answer in (during_list, during_create, during_signed, during_token):
        assert_unavailable(answer)
    assert during_ready.status_code == 503
    assert during_health.status_code == 200  # alive: not to be restarted, only taken out

    # Back without a restart: the same gunicorn and run_worker processes.
    _wait(lambda: stack.get("/readyz").status_code == 200, 30, "not ready again", stack.web_log)
    assert all(process.poll() is None for process in stack.processes)
    retried = stack.create("during-outage")
    replayed = stack.create("during-outage")
    listed = stack.get("/api/v1/payments?limit=200", headers=stack.headers()).json()["results"]
    _wait(
        lambda: "answers again" in stack.worker_log.read_text(),
        30,
        "the worker did not carry on",
        stack.worker_log,
    )

    assert retried.status_code == 201, retried.text
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == retried.json()["id"]
    assert stack.rows(
        "SELECT count(*) FROM payments_payment WHERE reference = %s", "during-outage"
    ) == [(1,)]
    assert {r.json()["id"] for r in before} <= {p["id"] for p in listed}  # nothing lost
    for log in (stack.web_log, stack.worker_log):
        assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
