"""`make run`'s demo tenant: one API key across restarts, no reprinted secret, a webhook URL."""

from __future__ import annotations

import json
import stat
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from gateway.audit import Actor
from gateway.models import AuditEvent
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get
from mtn.accounts import mtn_account_route
from shell.management.commands.demo_tenant import (
    DEMO_FUNDING_REASON,
    DEMO_KEY_NAME,
    DEMO_WEBHOOK_URL,
)
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, api_key_revoke, tenant_create

pytestmark = pytest.mark.django_db


def run_demo(key_file) -> tuple[dict, str]:
    out = StringIO()
    market_file = key_file.parent / "mtn-uganda-credentials.json"
    call_command(
        "demo_tenant",
        "--key-file",
        str(key_file),
        "--market-credentials-file",
        str(market_file),
        stdout=out,
    )
    text = out.getvalue()
    return json.loads(text.splitlines()[0]), text


def active_keys() -> list[ApiKey]:
    return list(ApiKey.objects.filter(tenant__slug="demo", revoked_at__isnull=True))


def opens_demo(raw_key: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key, HTTP_X_TENANT_ID="demo")
    return client.get("/api/v1/payments").status_code == 200


@pytest.fixture
def key_file(tmp_path):
    return tmp_path / "var" / "demo-api-key"


def test_the_first_run_creates_the_tenant_with_a_local_webhook_receiver(key_file):
    printed, text = run_demo(key_file)

    tenant = Tenant.objects.get(slug="demo")
    assert tenant.webhook_url == DEMO_WEBHOOK_URL
    assert printed["tenant"] == "demo"
    assert printed["webhook_secret"] == tenant.webhook_secret  # shown this once
    assert key_file.read_text().strip() == printed["api_key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert opens_demo(printed["api_key"])
    assert "Admin login (created now; kept in " in text
    # Kept owner-only beside the key, for demo_ready's box once every process answers.
    password_file = key_file.parent / "demo-admin-password"
    password = password_file.read_text().strip()
    assert f"admin / {password}\n" in text
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


def test_a_restart_reuses_the_same_key_and_issues_none(key_file):
    first, _ = run_demo(key_file)
    keys_before = ApiKey.objects.count()

    second, text = run_demo(key_file)
    third, _ = run_demo(key_file)

    assert second["api_key"] == third["api_key"] == first["api_key"]
    assert ApiKey.objects.count() == keys_before
    assert len(active_keys()) == 1
    assert opens_demo(first["api_key"])
    assert f"export API_KEY={first['api_key']} TENANT=demo" in text


def test_a_restart_does_not_reprint_the_webhook_secret_or_the_admin_password(key_file):
    run_demo(key_file)
    secret = Tenant.objects.get(slug="demo").webhook_secret

    printed, text = run_demo(key_file)

    assert "webhook_secret" not in printed
    assert secret not in text
    assert "Admin login" not in text
    assert "manage.py changepassword admin" in text


def test_a_lost_key_file_gives_one_new_key_and_revokes_the_old(key_file):
    first, _ = run_demo(key_file)
    key_file.unlink()

    second, _ = run_demo(key_file)

    assert second["api_key"] != first["api_key"]
    assert key_file.read_text().strip() == second["api_key"]
    assert [k.name for k in active_keys()] == [DEMO_KEY_NAME]
    assert opens_demo(second["api_key"])
    assert not opens_demo(first["api_key"])


def test_a_revoked_demo_key_is_replaced_and_the_file_updated(key_file):
    first, _ = run_demo(key_file)
    api_key_revoke(api_key=active_keys()[0], actor=Actor.system())

    second, _ = run_demo(key_file)

    assert second["api_key"] != first["api_key"]
    assert key_file.read_text().strip() == second["api_key"]
    assert len(active_keys()) == 1
    assert opens_demo(second["api_key"])


def test_a_file_holding_another_tenants_key_is_not_reused(key_file, alice):
    run_demo(key_file)
    key_file.write_text(alice.api_key)

    printed, _ = run_demo(key_file)

    assert printed["api_key"] != alice.api_key
    assert opens_demo(printed["api_key"])
    assert ApiKey.objects.get(prefix=alice.api_key[:12]).revoked_at is None


def test_keys_made_by_hand_for_the_demo_tenant_are_left_alone(key_file):
    run_demo(key_file)
    mine = api_key_create(
        tenant=Tenant.objects.get(slug="demo"), actor=Actor.system(), name="my script"
    )
    key_file.unlink()

    run_demo(key_file)

    assert opens_demo(mine.raw_key)
    assert sorted(k.name for k in active_keys()) == [DEMO_KEY_NAME, "my script"]


def test_an_existing_demo_tenant_without_a_webhook_url_gets_the_local_receiver(key_file):
    tenant_create(slug="demo", name="Demo Shop", actor=Actor.system())

    run_demo(key_file)

    assert Tenant.objects.get(slug="demo").webhook_url == DEMO_WEBHOOK_URL


def test_a_webhook_url_set_by_hand_is_kept(key_file):
    tenant_create(
        slug="demo", name="Demo Shop", webhook_url="https://example.com/hook", actor=Actor.system()
    )

    _, text = run_demo(key_file)

    assert Tenant.objects.get(slug="demo").webhook_url == "https://example.com/hook"
    assert "https://example.com/hook" in text


def test_the_printed_example_uses_eur_which_the_sandbox_takes(key_file):
    _, text = run_demo(key_file)

    assert '"currency": "EUR"' in text
    assert '"currency": "UGX"' not in text  # UGX is named only as the second market's
    assert "the simulator on :8002 (mtnuganda, UGX only)" in text


def test_the_first_run_funds_the_demo_tenant_so_a_payout_can_be_made(key_file):
    run_demo(key_file)

    tenant = Tenant.objects.get(slug="demo")
    assert balance_get(tenant_id=tenant.pk, currency="EUR").available == Decimal("500.00")
    funding = LedgerTransaction.objects.get(tenant_id=tenant.pk)
    assert funding.type == "adjustment"
    assert funding.memo == DEMO_FUNDING_REASON


def test_a_restart_does_not_fund_the_demo_tenant_again(key_file):
    run_demo(key_file)
    run_demo(key_file)

    tenant = Tenant.objects.get(slug="demo")
    assert LedgerTransaction.objects.filter(tenant_id=tenant.pk).count() == 1
    assert balance_get(tenant_id=tenant.pk, currency="EUR").available == Decimal("500.00")


def test_the_second_market_is_a_platform_account_for_ugx_with_the_files_credentials(key_file):
    run_demo(key_file)

    market_file = key_file.parent / "mtn-uganda-credentials.json"
    assert stat.S_IMODE(market_file.stat().st_mode) == 0o600
    written = json.loads(market_file.read_text())
    tenant = Tenant.objects.get(slug="demo")
    account = mtn_account_route(tenant_id=tenant.pk, currency="UGX")
    assert account.name == "uganda"
    assert account.tenant_id is None
    assert account.target_environment == "mtnuganda"
    assert account.base_url == "http://127.0.0.1:8002"
    assert account.collection_api_user == written["collection"]["api_user"]
    assert account.disbursement_api_key == written["disbursement"]["api_key"]
    # EUR still goes through the settings' account (the simulator on :8001).
    assert mtn_account_route(tenant_id=tenant.pk, currency="EUR").name == "default"


def test_a_restart_keeps_the_second_markets_credentials_and_writes_nothing(key_file):
    run_demo(key_file)
    market_file = key_file.parent / "mtn-uganda-credentials.json"
    first = market_file.read_text()
    audited = AuditEvent.objects.filter(object_type="mtn_account").count()

    run_demo(key_file)

    assert market_file.read_text() == first
    assert AuditEvent.objects.filter(object_type="mtn_account").count() == audited == 1


def test_a_deleted_credentials_file_gives_the_second_market_new_credentials(key_file):
    run_demo(key_file)
    market_file = key_file.parent / "mtn-uganda-credentials.json"
    old = json.loads(market_file.read_text())
    market_file.unlink()

    run_demo(key_file)

    new = json.loads(market_file.read_text())
    assert new != old
    tenant = Tenant.objects.get(slug="demo")
    account = mtn_account_route(tenant_id=tenant.pk, currency="UGX")
    assert account.collection_api_key == new["collection"]["api_key"]


def test_procfile_runs_the_second_simulator_demo_tenant_registers():
    from django.conf import settings

    from shell.management.commands.demo_tenant import (
        UGANDA_BASE_URL,
        default_market_credentials_file,
    )

    procfile = (settings.BASE_DIR / "Procfile.dev").read_text()
    [line] = [line for line in procfile.splitlines() if "--target-environment mtnuganda" in line]
    port = UGANDA_BASE_URL.rsplit(":", 1)[1]
    credentials = default_market_credentials_file().relative_to(settings.BASE_DIR)
    assert f"--port {port} " in line
    assert "--currency UGX" in line
    assert f"--credentials {credentials}" in line
    # webhook_listen keeps its own port.
    assert "webhook_listen --port 8003" in procfile
