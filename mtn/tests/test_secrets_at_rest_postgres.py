"""A pg_dump of the database holds no secret in clear (PostgreSQL only)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.db import connection

from gateway.audit import Actor
from mtn.accounts import mtn_account_set
from tenants.services import tenant_create, tenant_rotate_webhook_secret

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="pg_dump needs the PostgreSQL database"
    ),
    pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed"),
    # pg_dump reads through its own connection: the rows must be committed.
    pytest.mark.django_db(transaction=True),
]

CREDENTIALS = {
    "collection": {
        "subscription_key": "colsubkey-7f3a9c21d4e8",
        "api_user": "3d0c6a2e-8b1f-4c7d-9e5a-1b2c3d4e5f60",
        "api_key": "colapikey-5b8e2f1a9c3d",
    },
    "disbursement": {
        "subscription_key": "dissubkey-0e4d7a2b6c9f",
        "api_user": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "api_key": "disapikey-c4a1f8e3b7d2",
    },
}


def pg_dump() -> str:
    db = connection.settings_dict
    command = ["pg_dump", "--no-owner", "--dbname", db["NAME"]]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            command += [flag, str(db[key])]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    result = subprocess.run(  # noqa: S603 - fixed program, arguments from our own settings
        command, capture_output=True, text=True, timeout=60, check=True, env=env
    )
    return result.stdout


def test_a_database_dump_holds_no_secret_in_clear():
    tenant, issued = tenant_create(slug="dumped", name="Dumped", actor=Actor.system())
    old_secret = tenant.webhook_secret
    rotated = tenant_rotate_webhook_secret(tenant=tenant, actor=Actor.system())
    mtn_account_set(
        name="dumped-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials=CREDENTIALS,
        base_url="https://proxy.momoapi.mtn.com",
        tenant_slug="dumped",
        actor=Actor.system(),
    )

    dump = pg_dump()

    assert "dumped-ug" in dump  # the dump is of this database
    secrets = [
        issued.raw_key,
        old_secret,
        old_secret.removeprefix("whsec_"),
        rotated.webhook_secret,
        rotated.webhook_secret.removeprefix("whsec_"),
    ]
    secrets += [value for product in CREDENTIALS.values() for value in product.values()]
    leaked = [secret[:8] + "…" for secret in secrets if secret in dump]
    assert leaked == []
