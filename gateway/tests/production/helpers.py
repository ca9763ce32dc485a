"""What the production tests share: the compose file, read as the operator's machine reads it."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
DOCKERFILE = BASE_DIR / "Dockerfile"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def compose_command(name: str) -> list[str]:
    command = compose_service(name)["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def compose_environment(name: str) -> dict[str, str]:
    """The service's environment without ${...} values (those come from the operator's .env)."""
    environment = compose_service(name).get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items() if "${" not in str(value)}


def on_this_machine(command: list[str]) -> list[str]:
    """The image's ``python`` and ``gunicorn`` are this virtualenv's."""
    binaries = Path(sys.executable).parent
    program, *arguments = command
    if program == "python":
        return [sys.executable, *arguments]
    return [str(binaries / program), *arguments]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
