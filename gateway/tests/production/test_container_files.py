"""The Dockerfile and docker-compose.yml: conventional, complete, and valid for Compose v2.

No Docker engine runs here, so the image is not built. ``docker compose config`` (Compose v2,
as a Docker CLI plugin or a standalone ``docker-compose`` 2.x) validates the compose file when
it is installed; the YAML checks below run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from gateway.tests.production.helpers import (
    BASE_DIR,
    COMPOSE_FILE,
    DOCKERFILE,
    compose,
    compose_command,
    compose_environment,
    compose_service,
    production_secrets,
)

GATEWAY_SERVICES = ("migrate", "web", "worker", "mtn-simulator")


def _compose_v2() -> list[str] | None:
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) is None:
            continue
        try:
            found = subprocess.run(
                [*candidate, "version"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if found.returncode == 0 and re.search(r"\bv?2\.\d+\.\d+", found.stdout):
            return candidate
    return None


def _compose_config(
    command: list[str], env_file, *args: str, **env: str
) -> subprocess.CompletedProcess:
    cleared = {"ALLOWED_HOSTS", "POSTGRES_PASSWORD", "GATEWAY_IMAGE", *production_secrets()}
    environment = {name: value for name, value in os.environ.items() if name not in cleared}
    environment.update(env)
    return subprocess.run(
        [
            *command,
            "--project-directory",
            str(BASE_DIR),
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(env_file),
            *args,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def docker_compose() -> list[str]:
    command = _compose_v2()
    if command is None:
        pytest.skip(
            "Docker Compose v2 is not installed (neither `docker compose` nor a 2.x "
            "`docker-compose`); the compose file's structure is still checked by the YAML tests"
        )
    return command


def test_docker_compose_config_validates(docker_compose, tmp_path):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    secrets = {
        **production_secrets(),
        "ALLOWED_HOSTS": "pay.example.com",
        "POSTGRES_PASSWORD": "pw",
    }

    plain = _compose_config(docker_compose, env_file, "config", "--format", "json", **secrets)
    with_simulator = _compose_config(
        docker_compose, env_file, "--profile", "simulator", "config", "--format", "json", **secrets
    )

    assert plain.returncode == 0, plain.stderr
    assert with_simulator.returncode == 0, with_simulator.stderr
    services = json.loads(plain.stdout)["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker"}
    assert "mtn-simulator" in json.loads(with_simulator.stdout)["services"]
    assert services["web"]["environment"]["DATABASE_URL"] == (
        "postgres://gateway:pw@postgres:5432/gateway"
    )


def test_docker_compose_refuses_to_start_without_the_secrets(docker_compose, tmp_path):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")

    result = _compose_config(docker_compose, env_file, "config", "--quiet")

    assert result.returncode != 0
    # Compose names the first missing one it meets, in no fixed order.
    assert "required variable" in result.stderr
    assert re.search(r"SECRET_KEY|ALLOWED_HOSTS|POSTGRES_PASSWORD", result.stderr)


def test_compose_file_has_the_stack_and_the_simulator_only_under_a_profile():
    services = compose()["services"]

    assert set(services) == {"postgres", "redis", *GATEWAY_SERVICES}
    assert services["mtn-simulator"]["profiles"] == ["simulator"]
    assert all("profiles" not in services[name] for name in set(services) - {"mtn-simulator"})
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["redis"]


def test_compose_runs_migrate_once_before_web_and_worker():
    migrate = compose_service("migrate")

    assert compose_command("migrate") == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        depends_on = compose_service(name)["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["redis"]["condition"] == "service_healthy"


def test_compose_gateway_services_run_in_production_mode_on_postgres_and_redis():
    for name in GATEWAY_SERVICES:
        service = compose_service(name)
        environment = service["environment"]
        assert service["build"] == "."
        assert environment["DEBUG"] == "false"
        assert environment["LOG_FORMAT"] == "json"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://")
        # Secrets are never written in the file: the operator's .env must provide them.
        for name in production_secrets():
            assert re.fullmatch(rf"\$\{{{name}:\?.*\}}", environment[name]), name


def test_compose_web_uses_the_image_command_and_outlives_gunicorns_graceful_timeout():
    dockerfile_cmd = json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)[1])
    web = compose_service("web")

    assert compose_command("web") == dockerfile_cmd
    assert compose_command("web") == ["gunicorn", "--config", "gunicorn.conf.py", "gateway.wsgi"]
    assert compose_environment("web")["PROMETHEUS_MULTIPROC_DIR"]
    assert int(web["stop_grace_period"].rstrip("s")) > 30
    assert compose_command("worker") == ["python", "manage.py", "run_worker"]
    assert compose_environment("worker")["WORKER_METRICS_PORT"]


def test_dockerfile_is_multi_stage_slim_non_root_with_a_health_check():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.M)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)[1]
    user = re.findall(r"^USER (\S+)$", text, re.M)

    assert len(stages) >= 2
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)
    assert "collectstatic --noinput" in text
    assert user
    assert user[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = {
        line.strip()
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {".git", ".venv", ".env", "staticfiles"} <= ignored
    assert "db.sqlite3*" in ignored or "*.sqlite3" in ignored
