"""What the production tests share: the compose file, read as the operator's machine reads it."""

from __future__ import annotations

import secrets
import shlex
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet
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


def production_secrets() -> dict[str, str]:
    """Fresh values for every secret the settings refuse to start without when DEBUG is off.

    The MTN ones are this process's own inventions: the gateway and the simulator started
    with the same environment accept each other, as with the development values.
    """
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "MTN_COLLECTION_SUBSCRIPTION_KEY": secrets.token_hex(16),
        "MTN_COLLECTION_API_USER": str(uuid.uuid4()),
        "MTN_COLLECTION_API_KEY": secrets.token_hex(16),
        "MTN_DISBURSEMENT_SUBSCRIPTION_KEY": secrets.token_hex(16),
        "MTN_DISBURSEMENT_API_USER": str(uuid.uuid4()),
        "MTN_DISBURSEMENT_API_KEY": secrets.token_hex(16),
        "MTN_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
