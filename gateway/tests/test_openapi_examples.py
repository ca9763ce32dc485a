"""Swagger UI's "Try it out" pre-fills real examples, and paths read /payments/{id}."""

from __future__ import annotations

import json

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db

KINDS = [("/api/v1/payments", "payer"), ("/api/v1/payouts", "payee")]


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_paths_name_their_parameter_id(schema):
    paths = set(schema["paths"])
    for base, _ in KINDS:
        assert {f"{base}/{{id}}", f"{base}/{{id}}/events"} <= paths
    assert not [path for path in paths if "transfer_id" in path]
    for base, _ in KINDS:
        for path in (f"{base}/{{id}}", f"{base}/{{id}}/events"):
            (param,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "path"]
            assert param["name"] == "id"
            assert param["required"] is True


@pytest.mark.parametrize(("base", "party"), KINDS)
def test_the_create_body_example_is_the_walk_throughs(schema, base, party):
    content = schema["paths"][base]["post"]["requestBody"]["content"]["application/json"]
    (example,) = content["examples"].values()

    assert example["value"] == {
        "amount": "15.00",
        "currency": "EUR",
        party: "256772123456",
        "reference": "order-42",
        "description": "Order 42",
        "metadata": {"order": 42},
    }


@pytest.mark.parametrize(("base", "party"), KINDS)
def test_no_placeholder_values_are_pre_filled(schema, base, party):
    post = schema["paths"][base]["post"]
    request = json.dumps(post["requestBody"]["content"]["application/json"]["examples"])
    created = json.dumps(post["responses"]["201"]["content"]["application/json"]["examples"])

    for text in (request, created):
        assert '"string"' not in text
        assert "additionalProp" not in text


@pytest.mark.parametrize(("base", "party"), KINDS)
def test_the_create_request_fields_carry_their_own_examples(schema, base, party):
    name = "PaymentCreateRequest" if party == "payer" else "PayoutCreateRequest"
    properties = schema["components"]["schemas"][name]["properties"]

    assert properties["amount"]["example"] == "15.00"
    assert properties["currency"]["example"] == "EUR"
    assert properties[party]["example"] == "256772123456"
    assert properties["metadata"]["example"] == {"order": 42}


@pytest.mark.parametrize(("base", "party"), KINDS)
def test_responses_show_a_real_object(schema, base, party):
    created = schema["paths"][base]["post"]["responses"]["201"]["content"]["application/json"]
    (example,) = created["examples"].values()
    assert example["value"]["amount"] == "15.00"
    assert example["value"][party] == "256772123456"
    retrieved = schema["paths"][f"{base}/{{id}}"]["get"]["responses"]["200"]["content"]
    (example,) = retrieved["application/json"]["examples"].values()
    assert example["value"]["status"] == "PENDING"


@pytest.mark.parametrize(("base", "party"), KINDS)
def test_the_list_documents_its_party_filter(schema, base, party):
    names = {p["name"] for p in schema["paths"][base]["get"]["parameters"]}

    assert party in names
    assert {"status", "reference", "created_after", "created_before", "limit", "cursor"} <= names
