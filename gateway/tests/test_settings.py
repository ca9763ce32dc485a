"""Settings from the environment: production refuses the dev SECRET_KEY; --deploy is clean.

These start a fresh Python process, since settings are read once at start-up.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from gateway.settings import DEV_FIELD_ENCRYPTION_KEY, DEV_SECRET_KEY
from gateway.tests.production.helpers import BASE_DIR, production_secrets

_SECRETS = tuple(production_secrets())


def python(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DEBUG", "ALLOWED_HOSTS", *_SECRETS}
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
    result = manage("check", DEBUG="false", **{**production_secrets(), "SECRET_KEY": None})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_off_with_the_dev_secret_key_refuses_to_start():
    result = manage(
        "check", DEBUG="false", **{**production_secrets(), "SECRET_KEY": DEV_SECRET_KEY}
    )

    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development value" in result.stderr


# What the simulator accepts by default (gateway/settings.py), and the development secrets.
DEVELOPMENT_VALUES = {
    "MTN_COLLECTION_SUBSCRIPTION_KEY": "simulator-collection-subscription-key",
    "MTN_COLLECTION_API_USER": settings.SIMULATOR_COLLECTION_API_USER,
    "MTN_COLLECTION_API_KEY": "simulator-collection-api-key",
    "MTN_DISBURSEMENT_SUBSCRIPTION_KEY": "simulator-disbursement-subscription-key",
    "MTN_DISBURSEMENT_API_USER": settings.SIMULATOR_DISBURSEMENT_API_USER,
    "MTN_DISBURSEMENT_API_KEY": "simulator-disbursement-api-key",
    "MTN_WEBHOOK_SECRET": "dev-mtn-webhook-secret",
    "FIELD_ENCRYPTION_KEYS": DEV_FIELD_ENCRYPTION_KEY,
}


def test_debug_off_refuses_every_development_secret_and_names_each():
    refused = manage("check", DEBUG="false", **{**production_secrets(), **DEVELOPMENT_VALUES})

    assert refused.returncode != 0
    assert "Refusing to start with DEBUG off" in refused.stderr
    for name in DEVELOPMENT_VALUES:
        assert f"{name} is the built-in development value" in refused.stderr or (
            f"{name} holds the built-in development key" in refused.stderr
        ), name
    assert "SECRET_KEY" not in refused.stderr.split("Refusing")[-1]


def test_debug_off_refuses_every_missing_secret_and_names_each():
    names = sorted(production_secrets())
    # Unset or set to nothing: both are missing.
    missing = {name: None if index % 2 else "" for index, name in enumerate(names)}

    refused = manage("check", DEBUG="false", **missing)

    assert refused.returncode != 0
    for name in names:
        assert f"{name} is not set" in refused.stderr, name


def test_one_development_secret_among_real_ones_is_enough_to_refuse():
    environment = {**production_secrets(), "MTN_COLLECTION_API_KEY": "simulator-collection-api-key"}

    refused = manage("check", DEBUG="false", **environment)

    assert refused.returncode != 0
    message = refused.stderr.split("Refusing to start with DEBUG off: ")[-1]
    assert message.startswith("MTN_COLLECTION_API_KEY is the built-in development value. ")


def test_the_development_key_among_several_is_refused_too():
    keys = f"{production_secrets()['FIELD_ENCRYPTION_KEYS']},{DEV_FIELD_ENCRYPTION_KEY}"

    refused = manage(
        "check", DEBUG="false", **{**production_secrets(), "FIELD_ENCRYPTION_KEYS": keys}
    )

    assert refused.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS holds the built-in development key" in refused.stderr


def test_a_malformed_encryption_key_is_refused_even_with_debug_on():
    refused = manage("check", DEBUG="true", FIELD_ENCRYPTION_KEYS="not-a-fernet-key")

    assert refused.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 1 is not a Fernet key" in refused.stderr


def test_debug_off_starts_with_every_secret_set():
    started = manage("check", DEBUG="false", **production_secrets())

    assert started.returncode == 0, started.stderr


def test_gunicorn_refuses_to_start_on_a_development_secret():
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    environment = {**production_secrets(), "MTN_WEBHOOK_SECRET": "dev-mtn-webhook-secret"}

    refused = subprocess.run(
        [gunicorn, "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "--workers", "1"],
        cwd=BASE_DIR,
        env={**os.environ, "DEBUG": "false", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert refused.returncode != 0
    assert "MTN_WEBHOOK_SECRET is the built-in development value" in refused.stderr


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
        **{**production_secrets(), "SECRET_KEY": random_secret_key()},
        ALLOWED_HOSTS="gateway.example.com",
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output
