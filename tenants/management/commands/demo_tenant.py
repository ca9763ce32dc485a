"""For ``make run``: the demo tenant, one API key that survives restarts, and an admin login.

Only a hash of an API key is stored, so the demo key itself is kept in a git-ignored local
file (``var/demo-api-key``, readable by its owner only). On every start the key in that file
is reused while it still opens the demo tenant; only when it does not (first run, file
deleted, key revoked, another database) is a new one issued, and the demo keys issued
before it are revoked, so that restarts leave no trail of active keys.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.utils.crypto import constant_time_compare

from gateway.audit import Actor
from tenants.keys import api_key_prefix, hash_api_key
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke, tenant_create, tenant_update

DEMO_SLUG = "demo"
DEMO_KEY_NAME = "make run"
# Where `webhook_listen` (started by `make run`, Procfile.dev) receives the demo's events.
DEMO_WEBHOOK_URL = "http://127.0.0.1:8003/webhooks"


def default_key_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "demo-api-key"


def _read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


def _write_key(path: Path, raw_key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only before the key is written into it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(raw_key + "\n")


def _active_key_matching(tenant: Tenant, raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    key_hash = hash_api_key(raw_key)
    for api_key in ApiKey.objects.filter(
        tenant=tenant, prefix=api_key_prefix(raw_key), revoked_at__isnull=True
    ):
        if constant_time_compare(api_key.key_hash, key_hash):
            return api_key
    return None


class Command(BaseCommand):
    help = (
        "For `make run`: create the demo tenant (webhooks to the local webhook_listen), keep "
        "one API key for it across restarts in var/demo-api-key, and print how to call."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key-file", type=Path, default=None, help="default var/demo-api-key")
        parser.add_argument("--webhook-url", default=DEMO_WEBHOOK_URL)

    def handle(self, *args: Any, **options: Any) -> None:
        key_file: Path = options["key_file"] or default_key_file()
        webhook_url: str = options["webhook_url"]
        actor = Actor.system()
        created_secret = None
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant, issued = tenant_create(
                slug=DEMO_SLUG, name="Demo Shop", webhook_url=webhook_url, actor=actor
            )
            raw_key = issued.raw_key
            _write_key(key_file, raw_key)
            created_secret = tenant.webhook_secret
        else:
            raw_key = self._reuse_or_replace_key(tenant, key_file)
            if not tenant.webhook_url:
                tenant_update(
                    tenant=tenant,
                    changes={"webhook_url": webhook_url},
                    previous={"webhook_url": ""},
                    actor=actor,
                )

        credentials: dict[str, str] = {"tenant": tenant.slug, "api_key": raw_key}
        if created_secret:
            # Shown once, as create_tenant does; webhook_listen reads it from the database.
            credentials["webhook_secret"] = created_secret
        self.stdout.write(json.dumps(credentials))
        admin_password = self._ensure_admin()
        self.stdout.write(
            f"\nThe demo key is kept in {key_file} and reused on every `make run`.\n"
            "Try it (the gateway listens on http://127.0.0.1:8000):\n"
            f"  export API_KEY={raw_key} TENANT={tenant.slug}\n"
            "  curl -s -X POST http://127.0.0.1:8000/api/v1/payments \\\n"
            '    -H "X-API-Key: $API_KEY" -H "X-Tenant-ID: $TENANT" \\\n'
            '    -H "Idempotency-Key: order-$(date +%s%N)" \\\n'
            '    -H "Content-Type: application/json" \\\n'
            '    -d \'{"amount": "15.00", "currency": "EUR", "payer": "256772123456"}\'\n'
            "(The MTN sandbox, and so the simulator, takes only EUR.)\n"
            f"Merchant webhooks go to {tenant.webhook_url or webhook_url}: webhook_listen "
            "prints each event it verified.\n"
            "Swagger UI: http://127.0.0.1:8000/api/docs/  Admin: http://127.0.0.1:8000/admin/\n"
        )
        if admin_password:
            self.stdout.write(f"Admin login (created now, shown once): admin / {admin_password}\n")
        else:
            self.stdout.write(
                "Admin password forgotten? `.venv/bin/python manage.py changepassword admin`\n"
            )

    def _reuse_or_replace_key(self, tenant: Tenant, key_file: Path) -> str:
        """The key in ``key_file`` while it opens ``tenant``; else a new one (old ones revoked)."""
        stored = _read_key(key_file)
        if _active_key_matching(tenant, stored) is not None:
            return stored
        actor = Actor.system()
        # The demo key is replaced, not added to: the keys this command issued before (and
        # the one the tenant was created with, which has no name) are revoked.
        for old in ApiKey.objects.filter(
            tenant=tenant, revoked_at__isnull=True, name__in=[DEMO_KEY_NAME, ""]
        ):
            api_key_revoke(api_key=old, actor=actor)
        issued = api_key_create(tenant=tenant, actor=actor, name=DEMO_KEY_NAME)
        _write_key(key_file, issued.raw_key)
        return issued.raw_key

    @staticmethod
    def _ensure_admin() -> str | None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        return password
