"""The OpenAPI document is written for merchants and holds under a strict OpenAPI 3.0.3 reading
(issue 17): what a generated client and a strict validator need from it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from jsonschema import ValidationError

from tests.openapi_strict import check_component, check_instance, served_document

pytestmark = pytest.mark.django_db

# Words that betray a developer's note rather than a merchant's documentation.
INTERNAL = re.compile(r"``|\.py\b|\bDRF\b|context\[|representation|query_params\[|docstring")
WEBHOOK_EVENT_TYPES = {
    "payment.succeeded",
    "payment.failed",
    "payment.needs_review",
    "payout.succeeded",
    "payout.failed",
    "payout.needs_review",
    "refund.succeeded",
    "refund.failed",
    "refund.needs_review",
    "payout_batch.completed",
}


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        return served_document()


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def descriptions(node: Any, where: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                yield f"{where}/{key}", value
            else:
                yield from descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from descriptions(item, f"{where}/{index}")


def test_every_operation_says_what_it_does_for_a_merchant(document):
    for method, path, operation in operations(document):
        assert operation.get("summary"), (method, path)
        assert len(operation.get("description", "")) > 40, (method, path)


def test_no_internal_note_is_published(document):
    leaks = [(where, text) for where, text in descriptions(document) if INTERNAL.search(text)]

    assert not leaks


def test_tags_are_capitalised_and_described(document):
    declared = {tag["name"]: tag for tag in document["tags"]}
    for method, path, operation in operations(document):
        for tag in operation["tags"]:
            assert tag[0].isupper(), (method, path, tag)
            assert tag in declared, tag
    assert all(tag.get("description") for tag in declared.values())


def test_mtns_callback_doors_are_not_in_the_merchant_document(document):
    doors = [path for path in document["paths"] if re.match(r"^/api/v1/webhooks/mtn(/\{|$)", path)]

    assert doors == []


@pytest.mark.parametrize("path", ["/api/schema", "/api/docs"])
def test_the_documentation_without_its_slash_is_found(path):
    response = Client().get(path + "?format=json")

    assert response.status_code == 302
    assert response["Location"] == f"{path}/?format=json"


def test_a_null_the_api_sends_is_allowed_by_a_strict_reading(document):
    payment = document["paths"]["/api/v1/payments/{id}"]["get"]["responses"]["200"]
    (example,) = payment["content"]["application/json"]["examples"].values()
    assert example["value"]["failure_reason"] is None

    check_component(document, "Payment", example["value"])
    check_component(document, "Refund", _refund(failure_reason=None))
    check_component(
        document, "Refund", _refund(failure_reason={"code": "EXPIRED", "message": "Too late."})
    )
    with pytest.raises(ValidationError):
        check_component(document, "Refund", _refund(failure_reason="EXPIRED"))


def test_every_example_in_the_document_validates_strictly(document):
    checked = 0
    for _method, _path, operation in operations(document):
        for response in operation["responses"].values():
            for media in response.get("content", {}).values():
                for example in media.get("examples", {}).values():
                    check_instance(document, media["schema"], example["value"])
                    checked += 1
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        for example in (body or {}).get("examples", {}).values():
            check_instance(document, body["schema"], example["value"])
            checked += 1
    assert checked >= 8


def test_request_bodies_refuse_unknown_fields(document):
    schemas = document["components"]["schemas"]
    requests = [name for name in schemas if name.endswith("Request")]

    assert {"PaymentCreateRequest", "PayoutCreateRequest", "RefundCreateRequest"} <= set(requests)
    for name in requests:
        assert schemas[name]["additionalProperties"] is False, name
    with pytest.raises(ValidationError):
        check_component(document, "RefundCreateRequest", {"amount": "1.00", "reasn": "typo"})


def test_one_enum_per_concept(document):
    """No inline enum: a status or a currency has one type wherever it appears."""
    schemas = document["components"]["schemas"]
    inline = [
        (method, path, parameter["name"])
        for method, path, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if "enum" in parameter["schema"]
    ]
    assert inline == []
    enums = [tuple(sorted(map(str, s["enum"]))) for s in schemas.values() if "enum" in s]
    assert len(enums) == len(set(enums))
    for name in ("Payment", "Payout", "Refund"):
        properties = schemas[name]["properties"]
        assert properties["status"] == {"$ref": "#/components/schemas/Status"}
        assert properties["currency"] == {"$ref": "#/components/schemas/Currency"}
    listing = document["paths"]["/api/v1/payments"]["get"]["parameters"]
    (status,) = [p for p in listing if p["name"] == "status"]
    assert status["schema"] == {"$ref": "#/components/schemas/Status"}


def test_the_error_component_is_not_named_like_its_property(document):
    schemas = document["components"]["schemas"]

    assert "Error" not in schemas
    assert set(schemas["ErrorResponse"]["properties"]) == {"error"}


def test_response_headers_are_documented(document):
    for method, path, operation in operations(document):
        creates = any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        for status, response in operation["responses"].items():
            headers = set(response.get("headers", {}))
            assert "X-Request-ID" in headers, (method, path, status)
            if status in ("429", "503"):
                assert "Retry-After" in headers, (method, path, status)
            if creates and status == "201":
                assert {"Idempotent-Replayed", "Preference-Applied"} <= headers
    assert set(document["components"]["headers"]) == {
        "X-Request-ID",
        "Retry-After",
        "Idempotent-Replayed",
        "Preference-Applied",
    }


def test_the_bearer_key_alone_is_a_security_scheme_of_its_own(document):
    assert document["components"]["securitySchemes"]["Bearer"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        if path.startswith("/api/v1/webhooks/"):
            continue
        assert {"Bearer": []} in operation["security"], (method, path)


def test_the_csv_statement_is_an_operation_that_answers_only_csv(document):
    csv = document["paths"]["/api/v1/balance/transactions.csv"]["get"]
    json_list = document["paths"]["/api/v1/balance/transactions"]["get"]

    assert set(csv["responses"]["200"]["content"]) == {"text/csv"}
    assert set(json_list["responses"]["200"]["content"]) == {"application/json"}
    assert "format" not in {p["name"] for p in json_list["parameters"]}


def test_merchant_webhooks_are_described(document):
    schemas = document["components"]["schemas"]
    webhook = schemas["WebhookEvent"]

    assert set(webhook["discriminator"]["mapping"]) == WEBHOOK_EVENT_TYPES
    assert set(document["x-webhooks"]) == WEBHOOK_EVENT_TYPES
    for event in document["x-webhooks"].values():
        headers = {p["name"] for p in event["post"]["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    event = {
        "id": "evt_" + "ab" * 16,
        "type": "refund.failed",
        "created_at": "2026-12-06T10:00:00Z",
        "data": _refund(status="FAILED", failure_reason={"code": "EXPIRED", "message": "Late."}),
    }
    check_component(document, "WebhookEvent", event)
    with pytest.raises(ValidationError):
        check_component(document, "WebhookEvent", {**event, "type": "payment.failed"})


def test_the_document_is_json_too(document):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert json.loads(response.content)["x-webhooks"].keys() == document["x-webhooks"].keys()


def _refund(**overrides: Any) -> dict[str, Any]:
    refund = {
        "id": "0b3f8a56-9f0e-4b8e-9a55-2f1d3c4b5a6e",
        "payment": "5f0c6a8e-7d1b-4c3a-9e2f-1a2b3c4d5e6f",
        "status": "PENDING",
        "amount": "5.00",
        "currency": "EUR",
        "reason": None,
        "account": "default",
        "failure_reason": None,
        "created_at": "2026-12-06T10:00:00Z",
        "updated_at": "2026-12-06T10:00:00Z",
    }
    refund.update(overrides)
    return refund
