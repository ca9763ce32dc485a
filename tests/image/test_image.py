"""The container image, built from the Dockerfile as it is and run for real (``make image-test``).

``migrate``, the web process, the worker and the MTN simulator each run as a container of
the one image, on the host's network (this machine's dockerd has no bridge), against the
machine's PostgreSQL and Redis. A payment goes from PENDING to SUCCESSFUL through them, and
the web container stops on SIGTERM with exit code 0.

Every container gets production settings (DEBUG off) with freshly generated secrets, as a
deployment would: nothing runs on a development default.

It runs only when IMAGE_TEST=1 (``make image-test`` and CI set it): a build takes minutes.
Where dockerd cannot start, the test is skipped and says why; a failed build fails.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.image import docker_host

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        os.environ.get("IMAGE_TEST") != "1",
        reason="builds and runs the container image: run it with `make image-test`",
    ),
]

PG = "postgres://postgres@127.0.0.1:5432"
DB_NAME = "momo_image_test"
REDIS_URL = "redis://127.0.0.1:6379/13"
# The simulator's number that stays PENDING for --delay-seconds, then turns SUCCESSFUL.
PAYER = "46733123454"
FINAL_WITHIN_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(timings: dict[str, float], name: str, action):
    started = time.monotonic()
    result = action()
    timings[name] = round(time.monotonic() - started, 1)
    print(f"[image] {name}: {timings[name]} s", flush=True)
    return result


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    timings: dict[str, float] = {}
    try:
        daemon = timed(timings, "dockerd", docker_host.ensure_daemon)
    except docker_host.Unavailable as exc:
        pytest.skip(f"dockerd cannot run on this machine, so the image is not tested: {exc}")
    try:
        try:
            created = timed(timings, "base image", docker_host.ensure_base_image)
        except docker_host.Unavailable as exc:
            pytest.skip(f"no base image can be made here, so the image is not tested: {exc}")
        print(f"[image] base image {'created' if created else 'reused'}", flush=True)
        name = timed(timings, "docker build", docker_host.build_project_image)
        yield name
    finally:
        daemon.stop()
        docker_host.LOG_DIR.mkdir(parents=True, exist_ok=True)
        (docker_host.LOG_DIR / "timings.json").write_text(json.dumps(timings, indent=2))


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-qAtX", "-c", sql],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )


def production_environment(*, web_port: int, sim_port: int) -> dict[str, str]:
    """What a deployment sets: DEBUG off and real, generated secrets for everything."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback; TLS ends in front of it
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MTN_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "MTN_TARGET_ENVIRONMENT": "sandbox",
        "MTN_COLLECTION_SUBSCRIPTION_KEY": secrets.token_hex(16),
        "MTN_COLLECTION_API_USER": str(uuid.uuid4()),
        "MTN_COLLECTION_API_KEY": secrets.token_hex(16),
        "MTN_DISBURSEMENT_SUBSCRIPTION_KEY": secrets.token_hex(16),
        "MTN_DISBURSEMENT_API_USER": str(uuid.uuid4()),
        "MTN_DISBURSEMENT_API_KEY": secrets.token_hex(16),
        "MTN_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "MTN_CALLBACK_URL": f"http://127.0.0.1:{web_port}",
        "MTN_STATUS_POLL_AFTER_SECONDS": "3",
        "PORT": str(web_port),
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
    }


class Containers:
    """Containers of one test run, named after it and removed at the end whatever happened."""

    def __init__(self, image: str, env: dict[str, str]) -> None:
        self.image = image
        self.env = env
        self.run_id = uuid.uuid4().hex[:8]
        self.names: list[str] = []

    def _args(self, name: str) -> list[str]:
        args = ["--name", name, "--network", "host", "--label", f"momo-image-test={self.run_id}"]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        return args

    def once(self, role: str, *command: str, timeout: float = 300) -> str:
        name = f"momo-{role}-{self.run_id}"
        self.names.append(name)
        done = subprocess.run(  # noqa: S603
            ["docker", "run", *self._args(name), self.image, *command],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{role} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done.stdout

    def start(self, role: str, *command: str) -> str:
        name = f"momo-{role}-{self.run_id}"
        self.names.append(name)
        subprocess.run(  # noqa: S603
            ["docker", "run", "--detach", *self._args(name), self.image, *command],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return name

    def logs(self, name: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["docker", "logs", "--tail", "40", name],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout + done.stderr

    def inspect(self, name: str, template: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["docker", "inspect", "--format", template, name],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip()

    def remove_all(self) -> None:
        if self.names:
            subprocess.run(  # noqa: S603
                ["docker", "rm", "--force", *self.names],  # noqa: S607
                capture_output=True,
                timeout=120,
                check=False,
            )


def call(method: str, url: str, headers: dict[str, str], body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def wait_until_healthy(containers: Containers, name: str, url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = containers.inspect(name, "{{.State.Status}}")
        assert state == "running", f"{name} is {state}:\n{containers.logs(name)}"
        try:
            request = urllib.request.Request(url, headers={"Host": "127.0.0.1"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise AssertionError(f"{url} never answered:\n{containers.logs(name)}")


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    web_port, sim_port = free_port(), free_port()
    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    subprocess.run(
        ["redis-cli", "-n", "13", "FLUSHDB"],  # noqa: S607
        capture_output=True,
        timeout=30,
        check=False,
    )
    running = Containers(image, production_environment(web_port=web_port, sim_port=sim_port))
    try:
        yield running
    finally:
        running.remove_all()
        psql(f"DROP DATABASE IF EXISTS {DB_NAME}")


def test_the_image_migrates_serves_a_payment_to_success_and_stops_cleanly(containers):
    env = containers.env
    web_port = env["PORT"]
    base = f"http://127.0.0.1:{web_port}"

    containers.once("migrate", "python", "manage.py", "migrate", "--noinput")
    created = containers.once(
        "tenant", "python", "manage.py", "create_tenant", "imagetest", "--name", "Image test"
    )
    api_key = json.loads(created.strip().splitlines()[-1])["api_key"]
    sim_port = env["MTN_BASE_URL"].rsplit(":", 1)[1]
    simulator = containers.start(
        "simulator",
        "python",
        "manage.py",
        "mtn_sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        sim_port,
        "--delay-seconds",
        "2",
    )
    web = containers.start("web")  # the image's own command: gunicorn
    worker = containers.start("worker", "python", "manage.py", "run_worker")
    wait_until_healthy(containers, web, f"{base}/healthz")

    headers = {
        "X-API-Key": api_key,
        "X-Tenant-ID": "imagetest",
        "Content-Type": "application/json",
        "Host": "127.0.0.1",
    }
    payment = call(
        "POST",
        f"{base}/api/v1/payments",
        {**headers, "Idempotency-Key": "image-test-1"},
        {"amount": "15.00", "currency": "EUR", "payer": PAYER},
    )
    assert payment["status"] == "PENDING", payment

    deadline = time.monotonic() + FINAL_WITHIN_SECONDS
    status = payment["status"]
    while status == "PENDING" and time.monotonic() < deadline:
        time.sleep(1)
        status = call("GET", f"{base}/api/v1/payments/{payment['id']}", headers)["status"]
    assert status == "SUCCESSFUL", (
        f"payment still {status} after {FINAL_WITHIN_SECONDS} s\n--- web:\n"
        f"{containers.logs(web)}\n--- worker:\n{containers.logs(worker)}\n--- simulator:\n"
        f"{containers.logs(simulator)}"
    )
    assert containers.inspect(web, "{{.State.Health.Status}}") in {"healthy", "starting"}

    subprocess.run(
        ["docker", "kill", "--signal", "TERM", web],  # noqa: S607
        capture_output=True,
        timeout=30,
        check=True,
    )
    waited = subprocess.run(
        ["docker", "wait", web],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert waited.stdout.strip() == "0", f"web exited {waited.stdout}:\n{containers.logs(web)}"
