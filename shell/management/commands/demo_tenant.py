"""For ``make run``: the demo tenant, one API key that survives restarts, an admin login, a
balance to pay out from, and a second market.

Only a hash of an API key is stored, so the demo key itself is kept in a git-ignored local
file (``var/demo-api-key``, readable by its owner only). On every start the key in that file
is reused while it still opens the demo tenant; only when it does not (first run, file
deleted, key revoked, another database) is a new one issued, and the demo keys issued
before it are revoked, so that restarts leave no trail of active keys.

The demo tenant is funded once (500.00 EUR, a ledger adjustment with its own reason) so that
the README's payout works; a restart finds that adjustment and posts nothing. The second
simulator of ``make run`` (Procfile.dev: ``mtnuganda``, UGX, port 8002) accepts the
credentials in ``var/mtn-uganda-credentials.json``, which this command generates once; it
registers them as the platform's MTN account ``uganda`` for UGX, again only when the account
is missing or its credentials differ from the file.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.crypto import constant_time_compare

from gateway.audit import Actor
from ledger.models import LedgerTransaction, TransactionType
from ledger.services import ledger_adjust
from mtn.accounts import MtnAccountError, mtn_account_set
from mtn.models import CREDENTIAL_FIELDS, PRODUCTS, MtnAccount
from tenants.keys import api_key_prefix, hash_api_key
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke, tenant_create, tenant_update

DEMO_SLUG = "demo"
DEMO_KEY_NAME = "make run"
# Where `webhook_listen` (started by `make run`, Procfile.dev) receives the demo's events.
DEMO_WEBHOOK_URL = "http://127.0.0.1:8003/webhooks"
# The demo's starting balance, so that a payout works before any payment has settled.
DEMO_FUNDING = Decimal("500.00")
DEMO_FUNDING_CURRENCY = "EUR"
DEMO_FUNDING_REASON = "make run: demo tenant's starting balance"
# The second market: Procfile.dev's `mtn_sandbox --port 8002 --target-environment mtnuganda`.
UGANDA_ACCOUNT = "uganda"
UGANDA_TARGET_ENVIRONMENT = "mtnuganda"
UGANDA_CURRENCY = "UGX"
UGANDA_BASE_URL = "http://127.0.0.1:8002"
# MTN calls back through the gateway (runserver on :8000), as it does for the default account.
UGANDA_CALLBACK_URL = "http://127.0.0.1:8000"


def default_key_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "demo-api-key"


def admin_password_file(key_file: Path) -> Path:
    """Beside the demo key: the admin password ``make run`` made, for demo_ready to show."""
    return key_file.parent / "demo-admin-password"


def default_market_credentials_file() -> Path:
    return Path(settings.BASE_DIR) / "var" / "mtn-uganda-credentials.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only before the secret is written into it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _read_market_credentials(path: Path) -> dict[str, dict[str, str]] | None:
    """The credentials in ``path`` if it holds both products' complete set, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or set(data) != set(PRODUCTS):
        return None
    for values in data.values():
        if not isinstance(values, dict) or set(values) != set(CREDENTIAL_FIELDS):
            return None
        if not all(isinstance(value, str) and value for value in values.values()):
            return None
    return data


def _new_market_credentials() -> dict[str, dict[str, str]]:
    # Shaped like MTN's: a subscription key, an API user (a UUID) and its API key.
    return {
        product: {
            "subscription_key": secrets.token_hex(16),
            "api_user": str(uuid.uuid4()),
            "api_key": secrets.token_hex(16),
        }
        for product in PRODUCTS
    }


def _read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


def _write_key(path: Path, raw_key: str) -> None:
    _write_private(path, raw_key + "\n")


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
        parser.add_argument(
            "--market-credentials-file",
            type=Path,
            default=None,
            help="default var/mtn-uganda-credentials.json (the second simulator reads it)",
        )

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

        funded = self._fund_once(tenant)
        market_file: Path = options["market_credentials_file"] or default_market_credentials_file()
        market_changed = self._ensure_second_market(market_file)

        credentials: dict[str, str] = {"tenant": tenant.slug, "api_key": raw_key}
        if created_secret:
            # Shown once, as create_tenant does; webhook_listen reads it from the database.
            credentials["webhook_secret"] = created_secret
        self.stdout.write(json.dumps(credentials))
        admin_password = self._ensure_admin()
        registered = " (registered now)" if market_changed else ""
        when = "now" if funded else "on the first run"
        self.stdout.write(
            f"\nThe demo key is kept in {key_file} and reused on every `make run`.\n"
            "Try it (the gateway listens on http://127.0.0.1:8000):\n"
            f"  export API_KEY={raw_key} TENANT={tenant.slug}\n"
            "  curl -s -X POST http://127.0.0.1:8000/api/v1/payments \\\n"
            '    -H "X-API-Key: $API_KEY" -H "X-Tenant-ID: $TENANT" \\\n'
            '    -H "Idempotency-Key: order-$(date +%s%N)" \\\n'
            '    -H "Content-Type: application/json" \\\n'
            '    -d \'{"amount": "15.00", "currency": "EUR", "payer": "256772123456"}\'\n'
            "EUR goes to the simulator on :8001 (the MTN sandbox market, EUR only); UGX to the "
            f"platform account {UGANDA_ACCOUNT!r}{registered}, the simulator on :8002 "
            f"({UGANDA_TARGET_ENVIRONMENT}, UGX only).\n"
            f"Balance: {DEMO_FUNDING} {DEMO_FUNDING_CURRENCY} pre-funded {when} for payouts:\n"
            "  curl -s http://127.0.0.1:8000/api/v1/balance "
            '-H "X-API-Key: $API_KEY" -H "X-Tenant-ID: $TENANT"\n'
            f"Merchant webhooks go to {tenant.webhook_url or webhook_url}: webhook_listen "
            "prints each event it verified.\n"
            "Swagger UI: http://127.0.0.1:8000/api/docs/  Admin: http://127.0.0.1:8000/admin/\n"
        )
        if admin_password:
            # Kept for demo_ready, which frames it again once every process answers.
            _write_private(admin_password_file(key_file), admin_password + "\n")
            self.stdout.write(
                f"Admin login (created now; kept in {admin_password_file(key_file)}): "
                f"admin / {admin_password}\n"
            )
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
    def _fund_once(tenant: Tenant) -> bool:
        """Post the starting balance unless an earlier run did (found by its reason).

        Only `make run` calls this, one process at a time, so looking before posting is safe
        here; a deleted database starts over with a new tenant anyway.
        """
        already = LedgerTransaction.objects.filter(
            tenant_id=tenant.pk,
            type=TransactionType.ADJUSTMENT,
            currency=DEMO_FUNDING_CURRENCY,
            memo=DEMO_FUNDING_REASON,
        ).exists()
        if already:
            return False
        ledger_adjust(
            tenant_id=tenant.pk,
            currency=DEMO_FUNDING_CURRENCY,
            amount=DEMO_FUNDING,
            reason=DEMO_FUNDING_REASON,
            actor=Actor.system(),
        )
        return True

    @staticmethod
    def _ensure_second_market(path: Path) -> bool:
        """Keep the credentials file and the ``uganda`` account in step; True if it wrote."""
        wanted = _read_market_credentials(path)
        if wanted is None:
            wanted = _new_market_credentials()
            _write_private(path, json.dumps(wanted, indent=2) + "\n")
        account = MtnAccount.objects.filter(name=UGANDA_ACCOUNT).first()
        if account is not None and account.tenant_id is None:
            stored = {
                product: {part: getattr(account, f"{product}_{part}") for part in CREDENTIAL_FIELDS}
                for product in PRODUCTS
            }
            if (
                stored == wanted
                and account.target_environment == UGANDA_TARGET_ENVIRONMENT
                and account.base_url == UGANDA_BASE_URL
                and account.currency_list() == [UGANDA_CURRENCY]
            ):
                return False
        try:
            mtn_account_set(
                name=UGANDA_ACCOUNT,
                target_environment=UGANDA_TARGET_ENVIRONMENT,
                currencies=[UGANDA_CURRENCY],
                credentials=wanted,
                base_url=UGANDA_BASE_URL,
                callback_url=UGANDA_CALLBACK_URL,
                actor=Actor.system(),
            )
        except MtnAccountError as exc:
            # E.g. an account "uganda" of a tenant, or UGX taken by another platform account.
            raise CommandError(f"The demo's second market: {exc}") from exc
        return True

    @staticmethod
    def _ensure_admin() -> str | None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        return password
