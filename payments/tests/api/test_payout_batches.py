"""POST/GET /api/v1/payout_batches: validation (JSON and CSV), funds, idempotency, reads."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from conftest import fund_tenant, mtn_calls
from gateway.audit import Actor
from gateway.models import AuditEvent, IdempotencyKey
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from mtn.accounts import mtn_account_set
from payments import routing
from payments.models import Payout, PayoutBatch
from payments.services import transfer_transition
from payments.states import Status
from payments.tests.helpers import assert_error, post_json

pytestmark = pytest.mark.django_db

BATCHES_URL = "/api/v1/payout_batches"
CSV_HEADER = "payee,amount,reference,description"


def item(n: int, amount: Any = "1000", **extra: Any) -> dict[str, Any]:
    return {"payee": f"2567720{n:05d}", "amount": amount, "reference": f"emp-{n:03d}", **extra}


def batch_body(items: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "currency": "UGX",
        "reference": "payroll-2026-12",
        "description": "December salaries",
        "items": items if items is not None else [item(1, "2500"), item(2, "1500")],
        **extra,
    }


def post_csv(client: Any, text: str, *, key: str = "csv-1", query: str = "currency=UGX") -> Any:
    return client.post(
        f"{BATCHES_URL}?{query}", text, content_type="text/csv", HTTP_IDEMPOTENCY_KEY=key
    )


def csv_lines(count: int, *, amount: str = "1000") -> list[str]:
    return [CSV_HEADER] + [f"2567720{n:05d},{amount},emp-{n},pay {n}" for n in range(count)]


def assert_nothing_created() -> None:
    assert not PayoutBatch.objects.exists()
    assert not Payout.objects.exists()
    assert not LedgerTransaction.objects.filter(source_object="payout_batch").exists()
    assert not AuditEvent.objects.filter(object_type__in=["payout", "payout_batch"]).exists()


# --- create: the happy path ------------------------------------------------------------------


def test_a_batch_is_stored_with_its_items_as_pending_payouts_due_now(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")

    response = post_json(alice.client, BATCHES_URL, batch_body(), key="batch-1")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "status",
        "currency",
        "reference",
        "description",
        "count",
        "total_amount",
        "counts",
        "amount_succeeded",
        "created_at",
        "completed_at",
    }
    assert body["status"] == "PROCESSING"
    assert (body["count"], body["total_amount"], body["amount_succeeded"]) == (2, "4000", "0")
    assert body["counts"] == {"PENDING": 2, "SUCCESSFUL": 0, "FAILED": 0}
    assert (body["reference"], body["description"]) == ("payroll-2026-12", "December salaries")
    assert body["completed_at"] is None
    payouts = list(Payout.objects.order_by("batch_index"))
    assert [(p.payee, p.amount, p.reference) for p in payouts] == [
        ("256772000001", Decimal("2500"), "emp-001"),
        ("256772000002", Decimal("1500"), "emp-002"),
    ]
    assert all(str(p.batch_id) == body["id"] for p in payouts)
    assert all(p.status == Status.PENDING and p.submission == "queued" for p in payouts)
    assert all(p.next_attempt_at is not None for p in payouts)  # the dispatcher's to send
    assert len({p.mtn_reference_id for p in payouts}) == 2
    assert len({p.callback_token for p in payouts}) == 2
    # Nothing was sent to MTN by the request: the worker submits the items.
    assert mtn_calls(mtn, "transfer") == []


def test_the_total_is_reserved_in_one_statement_row(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")

    batch_id = post_json(alice.client, BATCHES_URL, batch_body()).json()["id"]

    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("6000"), Decimal("4000"))
    statement = alice.client.get("/api/v1/balance/transactions").json()["results"]
    assert statement[0]["type"] == "payout"
    assert statement[0]["net"] == "-4000"
    assert statement[0]["source"] == {"object": "payout_batch", "id": batch_id}
    assert len(statement) == 2  # the reservation and the funding
    assert ledger_verify() == []


def test_each_item_is_a_payout_listed_with_its_batch(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")
    batch_id = post_json(alice.client, BATCHES_URL, batch_body()).json()["id"]

    listed = alice.client.get("/api/v1/payouts").json()["results"]
    one = alice.client.get(f"/api/v1/payouts/{listed[0]['id']}").json()

    assert {p["batch"] for p in listed} == {batch_id}
    assert one["batch"] == batch_id
    events = alice.client.get(f"/api/v1/payouts/{one['id']}/events").json()["results"]
    assert events[0]["action"] == "payout.created"
    assert events[0]["data"]["batch"] == batch_id


def test_a_csv_batch_is_read_with_currency_and_reference_from_the_query(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")
    text = (
        "\ufeffpayee,amount,reference,description\r\n"
        "256772000001,2500,emp-001,\r\n"
        '+256772000002,1500,,"December, part time"\r\n'
        "\r\n"
    )

    response = post_csv(alice.client, text, query="currency=UGX&reference=payroll-csv")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["reference"], body["count"], body["total_amount"]) == ("payroll-csv", 2, "4000")
    payouts = list(Payout.objects.order_by("batch_index"))
    assert [(p.payee, p.reference, p.description) for p in payouts] == [
        ("256772000001", "emp-001", None),
        ("256772000002", None, "December, part time"),
    ]


def test_a_csv_may_leave_the_optional_columns_out(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")

    response = post_csv(alice.client, "amount,payee\n100,256772000001\n")

    assert response.status_code == 201, response.content
    assert Payout.objects.get().amount == Decimal("100")


# --- create: validation, all or nothing ------------------------------------------------------


def test_every_invalid_item_is_named_and_nothing_is_created(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000000")
    items = [item(n) for n in range(20)]
    items[3]["amount"] = "10.5"  # UGX has no decimals
    items[17]["amount"] = "-1"
    items[9]["payee"] = "12"
    items[12]["colour"] = "red"
    items[15]["reference"] = "emp-004"  # item 4's

    response = post_json(alice.client, BATCHES_URL, batch_body(items))

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {
        "items[3].amount",
        "items[17].amount",
        "items[9].payee",
        "items[12].colour",
        "items[15].reference",
    }
    assert "items[4]" in error["fields"]["items[15].reference"][0]
    assert error["message"].startswith("5 items are not valid")
    assert_nothing_created()
    assert not IdempotencyKey.objects.exists()
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert balance.reserved == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "UGX", "items": []}, "items"),
        ({"currency": "UGX"}, "items"),
        ({"currency": "UGX", "items": {"payee": "256772000001"}}, "items"),
        ({"items": [item(1)]}, "currency"),
        ({"currency": "XYZ", "items": [item(1)]}, "currency"),
        ({"currency": "UGX", "items": [item(1)], "metadata": {}}, "metadata"),
        ({"currency": "UGX", "items": [item(1)], "reference": "r" * 65}, "reference"),
        ({"currency": "UGX", "items": ["256772000001"]}, "items[0]"),
        ({"currency": "UGX", "items": [{"payee": "256772000001"}]}, "items[0].amount"),
        ({"currency": "UGX", "items": [item(1, amount=True)]}, "items[0].amount"),
        ({"currency": "UGX", "items": [item(1, description="d" * 161)]}, "items[0].description"),
    ],
)
def test_a_malformed_batch_is_400_naming_the_field(alice, mtn, body, field):
    fund_tenant(alice.tenant, "UGX", "10000")

    response = post_json(alice.client, BATCHES_URL, body)

    assert field in assert_error(response, 400, "validation_error")["fields"]
    assert_nothing_created()


def test_5001_items_are_refused(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000000")

    response = post_json(alice.client, BATCHES_URL, batch_body([item(n) for n in range(5001)]))

    fields = assert_error(response, 400, "validation_error")["fields"]
    assert fields == {"items": ["A batch has at most 5000 items, not 5001."]}
    assert_nothing_created()


def test_a_bad_line_4999_of_a_csv_is_named_by_its_line(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000000")
    lines = csv_lines(5000)
    lines[4998] = "256772004997,12.5,emp-4997,pay"  # line 4,999 of the file

    response = post_csv(alice.client, "\n".join(lines) + "\n")

    error = assert_error(response, 400, "validation_error")
    assert list(error["fields"]) == ["line 4999"]
    assert error["fields"]["line 4999"][0].startswith("amount: UGX amounts have at most 0")
    assert error["message"].startswith("One line is not valid")
    assert_nothing_created()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("payee,amount,colour\n256772000001,100,red\n", "line 1"),
        ("payee,reference\n256772000001,x\n", "line 1"),
        ("", "line 1"),
        (CSV_HEADER + "\n", "body"),
        (CSV_HEADER + "\n256772000001,100,a\n", "line 2"),
        (CSV_HEADER + "\n256772000001,100,a,\n256772000002,100,a,\n", "line 3"),
        (CSV_HEADER + "\nabc,100,,\n", "line 2"),
        (CSV_HEADER + "\n256772000001,,,\n", "line 2"),
    ],
)
def test_a_malformed_csv_is_400_naming_the_line(alice, mtn, text, field):
    fund_tenant(alice.tenant, "UGX", "10000")

    response = post_csv(alice.client, text)

    assert field in assert_error(response, 400, "validation_error")["fields"]
    assert_nothing_created()


def test_a_csv_needs_its_currency_in_the_query_and_json_takes_none(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")

    no_currency = post_csv(alice.client, CSV_HEADER + "\n256772000001,100,,\n", query="")
    json_with_query = alice.client.post(
        f"{BATCHES_URL}?currency=UGX",
        json.dumps(batch_body()),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    unknown = post_csv(alice.client, CSV_HEADER + "\n256772000001,100,,\n", query="x=1")

    assert "currency" in assert_error(no_currency, 400, "validation_error")["fields"]
    assert "currency" in assert_error(json_with_query, 400, "validation_error")["fields"]
    assert "x" in assert_error(unknown, 400, "validation_error")["fields"]
    assert_nothing_created()


def test_a_csv_that_is_not_utf8_is_400(alice, mtn):
    response = post_csv(alice.client, (CSV_HEADER + "\n256772000001,100,é,\n").encode("latin-1"))

    assert_error(response, 400, "validation_error")
    assert_nothing_created()


def test_a_batch_without_an_idempotency_key_is_400(alice, mtn):
    response = post_json(alice.client, BATCHES_URL, batch_body(), key=None)

    assert_error(response, 400, "idempotency_key_missing")
    assert_nothing_created()


# --- create: funds ---------------------------------------------------------------------------


def test_a_total_over_the_balance_is_422_and_creates_nothing(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "3999")

    first = post_json(alice.client, BATCHES_URL, batch_body(), key="b-1")
    fund_tenant(alice.tenant, "UGX", "10000")  # money arriving later does not change the answer
    again = post_json(alice.client, BATCHES_URL, batch_body(), key="b-1")

    assert_error(first, 422, "insufficient_funds")
    assert again.status_code == 422
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert_nothing_created()
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("13999"), Decimal("0"))
    assert IdempotencyKey.objects.get(key="b-1").response_status == 422


def test_through_the_tenants_own_account_nothing_is_reserved(alice, mtn):
    routing.forget_routes()
    mtn_account_set(
        name="alice-ug",
        target_environment="mtnuganda",
        currencies=["UGX"],
        credentials={
            "disbursement": {
                "subscription_key": "k",
                "api_user": "4d6f802b-3c1a-4e5f-9b7a-0c9d1e2f3a4b",
                "api_key": "s",
            },
        },
        base_url="https://mtn.test",
        tenant_slug=alice.tenant.slug,
        actor=Actor.system(),
    )

    response = post_json(alice.client, BATCHES_URL, batch_body())

    assert response.status_code == 201, response.content
    assert set(Payout.objects.values_list("mtn_account", flat=True)) == {"alice-ug"}
    assert PayoutBatch.objects.get().mtn_account == "alice-ug"
    assert not LedgerTransaction.objects.filter(tenant_id=alice.tenant.pk).exists()
    routing.forget_routes()


# --- idempotency -----------------------------------------------------------------------------


def test_a_replay_answers_the_first_batch_and_creates_nothing_more(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")
    first = post_json(alice.client, BATCHES_URL, batch_body(), key="same")

    again = post_json(alice.client, BATCHES_URL, batch_body(), key="same")
    other_body = post_json(alice.client, BATCHES_URL, batch_body([item(7)]), key="same")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert_error(other_body, 422, "idempotency_key_reused")
    assert PayoutBatch.objects.count() == 1
    assert Payout.objects.count() == 2
    assert balance_get(tenant_id=alice.tenant.pk, currency="UGX").reserved == Decimal("4000")


def test_a_csv_replay_is_compared_with_its_query_too(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")
    text = CSV_HEADER + "\n256772000001,100,,\n"
    first = post_csv(alice.client, text, key="c", query="currency=UGX&reference=a")

    again = post_csv(alice.client, text, key="c", query="currency=UGX&reference=a")
    other = post_csv(alice.client, text, key="c", query="currency=UGX&reference=b")

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert_error(other, 422, "idempotency_key_reused")
    assert Payout.objects.count() == 1


def test_a_key_whose_request_died_recovers_the_batch_it_created(alice, mtn, settings):
    fund_tenant(alice.tenant, "UGX", "10000")
    first = post_json(alice.client, BATCHES_URL, batch_body(), key="died")
    # As if the process died after the commit, before the answer was stored on the key.
    IdempotencyKey.objects.filter(key="died").update(
        state=IdempotencyKey.State.IN_PROGRESS, response_status=None, response_body=None
    )
    settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS = 0

    again = post_json(alice.client, BATCHES_URL, batch_body(), key="died")

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert PayoutBatch.objects.count() == 1


# --- reads -----------------------------------------------------------------------------------


def _create(client: Any, count: int = 2, *, key: str = "b", reference: str = "r") -> str:
    body = batch_body([item(n, "100") for n in range(count)], reference=reference)
    response = post_json(client, BATCHES_URL, body, key=key)
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def test_detail_list_and_filters(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")
    first = _create(alice.client, key="1", reference="one")
    second = _create(alice.client, key="2", reference="two")

    detail = alice.client.get(f"{BATCHES_URL}/{first}")
    listed = alice.client.get(BATCHES_URL).json()
    by_reference = alice.client.get(f"{BATCHES_URL}?reference=one").json()
    paged = alice.client.get(f"{BATCHES_URL}?limit=1").json()
    next_page = alice.client.get(paged["next"]).json()
    completed = alice.client.get(f"{BATCHES_URL}?status=COMPLETED").json()

    assert detail.status_code == 200
    assert detail.json()["id"] == first
    assert [b["id"] for b in listed["results"]] == [second, first]
    assert [b["id"] for b in by_reference["results"]] == [first]
    assert [b["id"] for b in paged["results"]] == [second]
    assert [b["id"] for b in next_page["results"]] == [first]
    assert next_page["next"] is None
    assert completed["results"] == []


@pytest.mark.parametrize(
    "query", ["status=DONE", "limit=0", "limit=201", "cursor=nope", "payee=256772000001"]
)
def test_a_bad_or_unknown_list_parameter_is_400(alice, query):
    assert_error(alice.client.get(f"{BATCHES_URL}?{query}"), 400, "validation_error")


def test_items_in_the_batchs_order_paginated_and_filtered(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")
    batch_id = _create(alice.client, count=5)
    fifth = Payout.objects.get(batch_index=4)
    transfer_transition(transfer=fifth, target=Status.FAILED, actor=Actor.mtn(), failure_code="X")

    url = f"{BATCHES_URL}/{batch_id}/payouts"
    first = alice.client.get(f"{url}?limit=2").json()
    second = alice.client.get(first["next"]).json()
    third = alice.client.get(second["next"]).json()
    failed = alice.client.get(f"{url}?status=FAILED").json()

    refs = [p["reference"] for page in (first, second, third) for p in page["results"]]
    assert refs == [f"emp-{n:03d}" for n in range(5)]
    assert third["next"] is None
    assert [p["id"] for p in failed["results"]] == [str(fifth.pk)]
    for query in ("status=NOPE", "cursor=abc", "format=xml", "limit=500", "page=2"):
        assert_error(alice.client.get(f"{url}?{query}"), 400, "validation_error")


def test_the_csv_report_has_every_item_with_its_outcome(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")
    batch_id = _create(alice.client, count=3)
    items = list(Payout.objects.order_by("batch_index"))
    transfer_transition(transfer=items[0], target=Status.SUCCESSFUL, actor=Actor.mtn())
    transfer_transition(
        transfer=items[2],
        target=Status.FAILED,
        actor=Actor.mtn(),
        failure_code="PAYEE_NOT_FOUND",
        failure_message="PAYEE_NOT_FOUND",
    )

    response = alice.client.get(f"{BATCHES_URL}/{batch_id}/payouts?format=csv&limit=1")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "id",
        "payee",
        "amount",
        "currency",
        "reference",
        "status",
        "failure_code",
        "failure_message",
        "updated_at",
    ]
    assert [(r[0], r[4], r[5], r[6]) for r in rows[1:]] == [
        (str(items[0].pk), "emp-000", "SUCCESSFUL", ""),
        (str(items[1].pk), "emp-001", "PENDING", ""),
        (str(items[2].pk), "emp-002", "FAILED", "PAYEE_NOT_FOUND"),
    ]
    assert rows[3][7]  # a sentence for the payee's failure, not empty
    assert rows[1][2:4] == ["100", "UGX"]


def test_another_tenants_batch_is_404_everywhere(alice, bob, mtn):
    fund_tenant(alice.tenant, "UGX", "100000")
    batch_id = _create(alice.client)

    for path in ("", "/payouts", "/payouts?format=csv"):
        assert_error(bob.client.get(f"{BATCHES_URL}/{batch_id}{path}"), 404, "not_found")
    assert bob.client.get(BATCHES_URL).json()["results"] == []
    assert_error(alice.client.get(f"{BATCHES_URL}/not-a-uuid"), 404, "not_found")


# --- progress --------------------------------------------------------------------------------


def test_progress_follows_each_item_and_the_last_completes_the_batch_once(alice, mtn):
    from webhooks.models import MerchantDelivery

    fund_tenant(alice.tenant, "UGX", "100000")
    batch_id = _create(alice.client, count=3)
    items = list(Payout.objects.order_by("batch_index"))

    transfer_transition(transfer=items[0], target=Status.SUCCESSFUL, actor=Actor.mtn())
    transfer_transition(transfer=items[1], target=Status.FAILED, actor=Actor.mtn())
    middle = alice.client.get(f"{BATCHES_URL}/{batch_id}").json()
    transfer_transition(transfer=items[2], target=Status.SUCCESSFUL, actor=Actor.mtn())
    transfer_transition(transfer=items[2], target=Status.SUCCESSFUL, actor=Actor.mtn())  # repeat
    done = alice.client.get(f"{BATCHES_URL}/{batch_id}").json()

    assert middle["status"] == "PROCESSING"
    assert middle["counts"] == {"PENDING": 1, "SUCCESSFUL": 1, "FAILED": 1}
    assert done["status"] == "COMPLETED"
    assert done["counts"] == {"PENDING": 0, "SUCCESSFUL": 2, "FAILED": 1}
    assert done["amount_succeeded"] == "200"
    assert done["completed_at"] is not None
    events = MerchantDelivery.objects.filter(event_type="payout_batch.completed")
    assert events.count() == 1
    assert events.get().payload["data"] == done
    balance = balance_get(tenant_id=alice.tenant.pk, currency="UGX")
    assert (balance.available, balance.reserved) == (Decimal("99800"), Decimal("0"))
    assert ledger_verify() == []


# --- OpenAPI ---------------------------------------------------------------------------------


def test_the_openapi_document_describes_batches_with_real_examples(alice, mtn):
    import yaml
    from django.test import Client

    schema = yaml.safe_load(Client().get("/api/schema/").content)
    fund_tenant(alice.tenant, "UGX", "100000")
    batch_id = _create(alice.client)
    real_batch = alice.client.get(f"{BATCHES_URL}/{batch_id}").json()
    real_item = alice.client.get(f"{BATCHES_URL}/{batch_id}/payouts").json()["results"][0]

    paths = schema["paths"]
    assert {BATCHES_URL, f"{BATCHES_URL}/{{id}}", f"{BATCHES_URL}/{{id}}/payouts"} <= set(paths)
    create = paths[BATCHES_URL]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert {"Idempotency-Key", "currency", "reference"} <= {p["name"] for p in create["parameters"]}
    assert {"201", "400", "409", "422"} <= set(create["responses"])
    (created,) = create["responses"]["201"]["content"]["application/json"]["examples"].values()
    assert set(created["value"]) == set(real_batch)
    assert set(created["value"]["counts"]) == set(real_batch["counts"])
    csv_example = create["requestBody"]["content"]["text/csv"]["examples"]
    assert next(iter(csv_example.values()))["value"].startswith(CSV_HEADER)
    items = paths[f"{BATCHES_URL}/{{id}}/payouts"]["get"]
    (page,) = items["responses"]["200"]["content"]["application/json"]["examples"].values()
    assert set(page["value"]["results"][0]) == set(real_item)
    assert {"status", "limit", "cursor"} <= {p["name"] for p in items["parameters"]}
    # The CSV is its own operation, answering text/csv only, so a generated client reaches it.
    csv_items = paths[f"{BATCHES_URL}/{{id}}/payouts.csv"]["get"]
    assert set(csv_items["responses"]["200"]["content"]) == {"text/csv"}
    assert "404" in paths[f"{BATCHES_URL}/{{id}}"]["get"]["responses"]
    payout = schema["components"]["schemas"]["Payout"]
    assert "batch" in payout["properties"]
    assert payout["properties"]["batch"].get("nullable") is True


def test_a_body_over_the_batch_limit_is_413_and_creates_nothing(alice, mtn, settings):
    settings.PAYOUT_BATCH_MAX_BODY_BYTES = 2000
    fund_tenant(alice.tenant, "UGX", "100000000")

    response = post_csv(alice.client, "\n".join(csv_lines(100)))

    assert_error(response, 413, "payload_too_large")
    assert_nothing_created()


def test_a_batch_may_be_far_larger_than_a_payment_body(alice, mtn, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # a payment's limit does not apply here
    fund_tenant(alice.tenant, "UGX", "100000000")

    response = post_json(alice.client, BATCHES_URL, batch_body([item(n) for n in range(200)]))

    assert response.status_code == 201, response.content
    assert Payout.objects.count() == 200


def test_csv_is_read_only_by_the_batch_endpoint(alice, mtn):
    fund_tenant(alice.tenant, "UGX", "10000")

    response = alice.client.post(
        "/api/v1/payouts",
        "payee,amount\n256772000001,100\n",
        content_type="text/csv",
        HTTP_IDEMPOTENCY_KEY="csv-elsewhere",
    )

    assert_error(response, 400, "malformed_json")
    assert not Payout.objects.exists()
