"""Settings from the environment: production refuses the dev SECRET_KEY; --deploy is clean.

These start a fresh Python process, since settings are read once at start-up.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys

from django.conf import settings

from gateway.settings import DEV_SECRET_KEY


def python(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}
    }
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    return python("manage.py", *args, **env)


def random_secret_key() -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(50))


def test_debug_off_without_secret_key_refuses_to_start():
    result = manage("check", DEBUG="false", SECRET_KEY=None)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is the built-in development value" in result.stderr


def test_debug_off_with_the_dev_secret_key_refuses_to_start():
    result = manage("check", DEBUG="false", SECRET_KEY=DEV_SECRET_KEY)

    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development value" in result.stderr


def test_an_unreadable_debug_value_refuses_to_start():
    result = manage("check", DEBUG="maybe", SECRET_KEY=random_secret_key())

    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_debug_on_starts_with_the_dev_secret_key():
    result = python(
        "-c",
        "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        DEBUG="yes",
        SECRET_KEY=None,
        DJANGO_SETTINGS_MODULE="gateway.settings",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage(
        "check",
        "--deploy",
        DEBUG="false",
        SECRET_KEY=random_secret_key(),
        ALLOWED_HOSTS="gateway.example.com",
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output
