"""A merchant's generated client, without hand edits: ``openapi-python-client`` builds a
package from the served document (offline: the generator is a PyPI package), and the test
imports it and drives create payment -> retrieve -> refund -> statement (JSON and CSV)
against a live gateway whose MTN is the simulator. Then ``mypy --strict`` checks natural
merchant code written against the package (one enum per concept: a payment's ``status``
and ``currency`` are the types the list filters take).

Slow-ish (the generator and mypy run as processes): CI runs it once, on PostgreSQL
(``.ci/run`` leaves ``tests/client`` out of the SQLite run).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.request import urlopen

import pytest
from django.utils import timezone

from conftest import fund_tenant
from gateway.audit import Actor
from mtn.sandbox import SandboxConfig, start_sandbox
from payments.models import Payment, Refund
from shell.worker import Worker
from tenants.services import tenant_create
from webhooks.models import MerchantDelivery

pytestmark = pytest.mark.e2e

PACKAGE = "momo_client"
BIN = Path(sys.executable).parent
OK = "256772123456"
FAILS = "46733123451"  # the simulator: APPROVAL_REJECTED


@pytest.fixture
def gateway(transactional_db, live_server, settings) -> Iterator[dict[str, Any]]:
    """A live gateway, MTN the simulator (polled), a funded tenant with a webhook URL."""
    handle = start_sandbox(SandboxConfig(delay_seconds=0, seed=5))
    settings.MTN_BASE_URL = handle.base_url
    settings.MTN_CALLBACK_URL = ""
    settings.MTN_SUBMIT_MAX_TRIES = 1
    settings.MTN_READ_TIMEOUT = 2.0
    settings.MTN_STATUS_POLL_AFTER_SECONDS = 0
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    tenant, issued = tenant_create(
        slug="generated",
        name="Generated",
        webhook_url="http://127.0.0.1:9/hooks",  # nobody listens: deliveries stay stored
        actor=Actor.system(),
    )
    fund_tenant(tenant, "EUR", "1000")
    yield {"url": live_server.url, "api_key": issued.raw_key, "tenant": tenant}
    handle.stop()


@pytest.fixture
def client_package(gateway, tmp_path, monkeypatch) -> ModuleType:
    with urlopen(f"{gateway['url']}/api/schema/") as answer:  # noqa: S310 - the live server
        (tmp_path / "schema.yaml").write_bytes(answer.read())
    # No post-hooks (ruff formatting of the output): the package is used as generated.
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")
    subprocess.run(  # noqa: S603 - our own venv's generator
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(tmp_path / "schema.yaml"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def settle(model: type, pk: Any) -> Any:
    """Drive the worker until MTN's outcome is applied."""
    for _ in range(6):
        obj = model.objects.get(pk=pk)
        if obj.status != "PENDING":
            return obj
        model.objects.filter(pk=pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        Worker().drain()
    return model.objects.get(pk=pk)


def test_a_generated_client_drives_payment_refund_and_statement(gateway, client_package):
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    for group in ("payments", "refunds", "balances"):
        importlib.import_module(f"{PACKAGE}.api.{group}")
    payments = api.payments
    refunds = api.refunds
    balances = api.balances
    for name in (
        "payments.payments_create",
        "payments.payments_retrieve",
        "payments.payments_list",
        "refunds.refunds_create",
        "refunds.refunds_retrieve",
        "balances.balance_transactions_list",
        "balances.balance_transactions_csv",
        "balances.balance_retrieve",
    ):
        importlib.import_module(f"{PACKAGE}.api.{name}")
    # One credential: the bearer key (the generated AuthenticatedClient's only kind).
    client = client_package.AuthenticatedClient(base_url=gateway["url"], token=gateway["api_key"])

    created = payments.payments_create.sync(
        client=client,
        idempotency_key="generated-1",
        body=models.PaymentCreateRequest(
            amount="12.50",
            currency=models.Currency.EUR,
            payer="+256 77 212-3456",
            reference="order-7",
            metadata=models.PaymentCreateRequestMetadataType0.from_dict({"order": 7}),
        ),
    )
    assert isinstance(created, models.Payment), created
    assert created.status == models.Status.PENDING
    assert created.failure_reason is None
    assert created.payer == OK
    settle(Payment, created.id)

    payment = payments.payments_retrieve.sync(id=created.id, client=client)
    assert isinstance(payment, models.Payment)
    assert payment.status == models.Status.SUCCESSFUL
    assert payment.currency == models.Currency.EUR
    page = payments.payments_list.sync(client=client, status=payment.status)
    assert [p.id for p in page.results] == [created.id]

    declined = payments.payments_create.sync(
        client=client,
        idempotency_key="generated-2",
        body=models.PaymentCreateRequest(amount=3, currency=models.Currency.EUR, payer=FAILS),
    )
    settle(Payment, declined.id)
    declined = payments.payments_retrieve.sync(id=declined.id, client=client)
    assert declined.status == models.Status.FAILED
    assert isinstance(declined.failure_reason, models.FailureReason)
    assert declined.failure_reason.code == "APPROVAL_REJECTED"

    refund = refunds.refunds_create.sync(
        id=created.id,
        client=client,
        idempotency_key="generated-refund-1",
        body=models.RefundCreateRequest(amount="5.00", reason="One item out of stock"),
    )
    assert isinstance(refund, models.Refund), refund
    settle(Refund, refund.id)
    refund = refunds.refunds_retrieve.sync(id=refund.id, client=client)
    assert refund.status == models.Status.SUCCESSFUL
    too_much = refunds.refunds_create.sync(
        id=created.id,
        client=client,
        idempotency_key="generated-refund-2",
        body=models.RefundCreateRequest(amount="100.00"),
    )
    assert isinstance(too_much, models.ErrorResponse)
    assert too_much.error.code == "refund_exceeds_payment"

    statement = balances.balance_transactions_list.sync(client=client, currency=models.Currency.EUR)
    assert isinstance(statement, models.BalanceTransactionList)
    kinds = [row.type_ for row in statement.results]
    assert kinds[:2] == [
        models.BalanceTransactionType.REFUND,
        models.BalanceTransactionType.PAYMENT,
    ]
    assert statement.results[0].source.object_ == models.SourceObject.REFUND
    csv_text = balances.balance_transactions_csv.sync(client=client, currency=models.Currency.EUR)
    assert isinstance(csv_text, str)
    lines = csv_text.splitlines()
    assert lines[0] == "id,type,currency,amount,fee,net,source_object,source_id,created_at"
    assert [line.split(",")[0] for line in lines[1:]] == [str(r.id) for r in statement.results]
    balance = balances.balance_retrieve.sync(client=client)
    assert balance.balances[0].available == "1007.50"

    # The webhook bodies the gateway stored for this tenant read as the document's events.
    events = [d.payload for d in MerchantDelivery.objects.order_by("created_at")]
    kinds = {event["type"] for event in events}
    assert {"payment.succeeded", "payment.failed", "refund.succeeded"} <= kinds
    for event in events:
        model = {"payment": models.PaymentEvent, "refund": models.RefundEvent}[
            event["type"].split(".")[0]
        ]
        parsed = model.from_dict(event)
        assert parsed.to_dict()["data"]["id"] == event["data"]["id"]


MERCHANT_CODE = '''
    """Natural merchant code against the generated package: it must pass mypy --strict."""

    from __future__ import annotations

    from momo_client import AuthenticatedClient
    from momo_client.api.balances import balance_transactions_csv, balance_transactions_list
    from momo_client.api.payments import payments_create, payments_list, payments_retrieve
    from momo_client.api.refunds import refunds_create
    from momo_client.models import (
        Currency,
        ErrorResponse,
        Payment,
        PaymentCreateRequest,
        PaymentEvent,
        RefundCreateRequest,
        Status,
    )


    class PaymentRefused(Exception):
        pass


    def pay(client: AuthenticatedClient, order: int, amount: str) -> Payment:
        answer = payments_create.sync(
            client=client,
            idempotency_key=f"order-{order}",
            body=PaymentCreateRequest(amount=amount, currency=Currency.EUR, payer="256772123456"),
        )
        if isinstance(answer, ErrorResponse):
            raise PaymentRefused(f"{answer.error.code}: {answer.error.message}")
        if answer is None:
            raise PaymentRefused("no answer")
        return answer


    def why_failed(client: AuthenticatedClient, payment: Payment) -> str | None:
        current = payments_retrieve.sync(id=payment.id, client=client)
        if not isinstance(current, Payment) or current.status != Status.FAILED:
            return None
        return current.failure_reason.message if current.failure_reason else None


    def like_this_one(client: AuthenticatedClient, payment: Payment) -> list[Payment]:
        page = payments_list.sync(client=client, status=payment.status, limit=10)
        return [] if page is None or isinstance(page, ErrorResponse) else page.results


    def statement(client: AuthenticatedClient, payment: Payment) -> tuple[int, str]:
        rows = balance_transactions_list.sync(client=client, currency=payment.currency)
        count = 0 if rows is None or isinstance(rows, ErrorResponse) else len(rows.results)
        csv_text = balance_transactions_csv.sync(client=client, currency=payment.currency)
        return count, csv_text if isinstance(csv_text, str) else ""


    def refund_half(client: AuthenticatedClient, payment: Payment, key: str) -> str:
        answer = refunds_create.sync(
            id=payment.id,
            client=client,
            idempotency_key=key,
            body=RefundCreateRequest(reason="half"),
        )
        if isinstance(answer, ErrorResponse):
            return answer.error.code
        return answer.status.value if answer else "none"


    def on_webhook(body: dict[str, object]) -> str:
        event = PaymentEvent.from_dict(body)
        return f"{event.type_.value} {event.data.id} {event.data.status.value}"
'''


def test_merchant_code_on_the_generated_package_passes_mypy_strict(client_package, tmp_path):
    (tmp_path / "merchant.py").write_text(textwrap.dedent(MERCHANT_CODE))

    result = subprocess.run(  # noqa: S603 - our own venv's mypy
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            "",
            "merchant.py",
            PACKAGE,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_document_the_client_was_built_from_is_the_served_one(gateway, tmp_path):
    with urlopen(f"{gateway['url']}/api/schema/?format=json") as answer:  # noqa: S310
        document = json.loads(answer.read())

    assert "/api/v1/balance/transactions.csv" in document["paths"]
