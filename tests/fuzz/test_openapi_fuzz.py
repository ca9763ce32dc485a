"""Hostile input: schemathesis over the served OpenAPI document, against a live server.

Every operation of ``/api/schema/`` is called with generated requests, valid and invalid
(schemathesis's examples, coverage and fuzzing phases), with a tenant's real credentials
and a fresh ``Idempotency-Key`` per create. Every answer must be: no 5xx, a documented
status code, a documented content type, and a body that matches the documented schema.

Generated ids never match anything, so half of the calls that take an id get a real one
(a payment or payout made beforehand, SUCCESSFUL or FAILED). MTN's callback doors are not in
the merchant document: ``test_callback_fuzz.py`` fuzzes them. MTN is the simulator, in
process.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import fund_tenant
from gateway.audit import Actor
from mtn.sandbox import SandboxConfig, start_sandbox
from payments import services
from payments.models import Payment, Payout, Refund
from shell.worker import Worker
from tenants.services import tenant_create

pytestmark = pytest.mark.e2e

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CREATES = (
    "/api/v1/payments",
    "/api/v1/payouts",
    "/api/v1/payments/{id}/refunds",
    "/api/v1/payout_batches",
)


@dataclass
class Seeded:
    headers: dict[str, str]
    # "payments" / "payouts" / "refunds" / "payout_batches" -> ids of existing objects
    ids: dict[str, list[str]]
    tokens: list[str]


def _create(client: APIClient, kind: str, currency: str, key: str) -> str:
    party = "payer" if kind == "payments" else "payee"
    response = client.post(
        f"/api/v1/{kind}",
        json.dumps({"amount": "1250", "currency": currency, party: "256772123456"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert response.status_code == 201, response.content
    Worker().run_once()  # the dispatcher submits it (and refuses UGX on the sandbox)
    return response.json()["id"]


@pytest.fixture
def seeded(transactional_db, settings) -> Iterator[Seeded]:
    """A tenant with a SUCCESSFUL and a FAILED payment, payout and refund; MTN is the
    simulator. The tenant is funded, so that payouts can reserve their amount."""
    settings.RATE_LIMIT_DEFAULT = "100000/m"
    settings.CALLBACK_RATE_LIMIT = "100000/m"
    handle = start_sandbox(SandboxConfig(delay_seconds=0, seed=11))
    settings.MTN_BASE_URL = handle.base_url
    settings.MTN_CALLBACK_URL = ""
    settings.MTN_SUBMIT_MAX_TRIES = 1
    settings.MTN_READ_TIMEOUT = 2.0
    services._client_local.__dict__.pop("clients", None)
    tenant, issued = tenant_create(slug="fuzz", name="Fuzz", actor=Actor.system())
    for currency in ("EUR", "UGX"):
        fund_tenant(tenant, currency, "1000000")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.raw_key, HTTP_X_TENANT_ID="fuzz")
    ids: dict[str, list[str]] = {"payments": [], "payouts": []}
    for kind, model in (("payments", Payment), ("payouts", Payout)):
        succeeded = _create(client, kind, "EUR", f"seed-{kind}-ok")
        # The sandbox takes only EUR: MTN refuses UGX outright, so this one is FAILED at once.
        failed = _create(client, kind, "UGX", f"seed-{kind}-failed")
        services.transfer_poll(transfer=model.objects.get(pk=succeeded))
        assert model.objects.get(pk=succeeded).status == "SUCCESSFUL"
        assert model.objects.get(pk=failed).status == "FAILED"
        ids[kind] = [succeeded, failed]
    ids["refunds"] = []
    for outcome, status in (("ok", "SUCCESSFUL"), ("failed", "FAILED")):
        response = client.post(
            f"/api/v1/payments/{ids['payments'][0]}/refunds",
            json.dumps({"amount": "1.00"}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"seed-refund-{outcome}",
        )
        assert response.status_code == 201, response.content
        Worker().run_once()  # the dispatcher submits it
        refund_id = response.json()["id"]
        refund = Refund.objects.select_related("tenant").get(pk=refund_id)
        if status == "FAILED":
            services.transfer_transition(transfer=refund, target=status, actor=Actor.mtn())
        else:
            services.transfer_poll(transfer=refund)
        assert Refund.objects.get(pk=refund_id).status == status
        ids["refunds"].append(refund_id)
    ids["payout_batches"] = []
    for n in range(2):
        response = client.post(
            "/api/v1/payout_batches",
            json.dumps(
                {"currency": "EUR", "items": [{"payee": "256772123456", "amount": "1.00"}] * 3}
            ),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"seed-batch-{n}",
        )
        assert response.status_code == 201, response.content
        ids["payout_batches"].append(response.json()["id"])
    tokens = [
        transfer.callback_token
        for model in (Payment, Payout, Refund)
        for transfer in model.objects.all()
    ]
    yield Seeded({"X-API-Key": issued.raw_key, "X-Tenant-ID": "fuzz"}, ids, tokens)
    handle.stop()
    services._client_local.__dict__.pop("clients", None)


@pytest.fixture
def api_schema(live_server, seeded):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")


schema = schemathesis.pytest.from_fixture("api_schema")
_turns = itertools.count()
_picks = itertools.count()


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_breaks_the_api_or_its_documentation(case, seeded, live_server):
    headers = dict(seeded.headers)
    if case.method == "POST" and case.path in CREATES:
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
    real = next(_turns) % 2 == 0
    if real and case.path_parameters and "id" in case.path_parameters:
        kind = case.path.split("/")[3]  # /api/v1/<kind>/{id}...
        case.path_parameters["id"] = seeded.ids[kind][next(_picks) % 2]
    if real and case.path_parameters and "token" in case.path_parameters:
        case.path_parameters["token"] = seeded.tokens[next(_picks) % len(seeded.tokens)]
    case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)
