"""The OpenAPI document and Swagger UI, served with no request to another host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert isinstance(document, dict)
    return document


def test_schema_is_openapi_3_without_credentials(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"]


def test_schema_as_json_when_asked(schema):
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["paths"].keys() == schema["paths"].keys()


def test_schema_lists_every_merchant_endpoint(schema):
    assert {
        "/api/v1/payments",
        "/api/v1/payments/{id}",
        "/api/v1/payments/{id}/events",
        "/api/v1/payouts",
        "/api/v1/payouts/{id}",
        "/api/v1/payouts/{id}/events",
    } <= set(schema["paths"])


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/payouts"])
def test_create_documents_idempotency_key_and_the_error_responses(schema, path):
    create = schema["paths"][path]["post"]

    headers = {p["name"]: p for p in create["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert {"201", "400", "401", "403", "409", "422", "429"} <= set(create["responses"])
    assert "requestBody" in create


def test_payment_create_body_and_response_are_described(schema):
    create = schema["paths"]["/api/v1/payments"]["post"]
    request_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    response_ref = create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    components = schema["components"]["schemas"]

    request = components[request_ref.rsplit("/", 1)[1]]
    response = components[response_ref.rsplit("/", 1)[1]]
    assert {"amount", "currency", "payer"} <= set(request["required"])
    assert {"reference", "description", "metadata"} <= set(request["properties"])
    assert {"id", "status", "amount", "payer", "failure_reason"} <= set(response["properties"])


def test_detail_and_events_document_404(schema):
    for path in ("/api/v1/payments/{id}", "/api/v1/payments/{id}/events"):
        assert {"200", "401", "404"} <= set(schema["paths"][path]["get"]["responses"])


def test_list_documents_its_filters(schema):
    listing = schema["paths"]["/api/v1/payments"]["get"]

    names = {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert {"status", "reference", "created_after", "created_before", "limit", "cursor"} <= names
    assert {"200", "400", "401", "429"} <= set(listing["responses"])


def test_errors_have_the_envelope_schema(schema):
    error = schema["paths"]["/api/v1/payments"]["post"]["responses"]["422"]
    ref = error["content"]["application/json"]["schema"]["$ref"]
    envelope = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]

    assert set(envelope["properties"]) == {"error"}


def test_the_bearer_key_alone_or_both_headers_are_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    headers = {scheme["name"] for scheme in schemes.values() if scheme.get("in") == "header"}

    assert headers == {"X-API-Key", "X-Tenant-ID"}
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/webhooks/"):
                continue
            assert operation["security"] == [{"Bearer": []}, {"ApiKey": [], "TenantId": []}], (
                method,
                path,
            )


def test_swagger_ui_is_html_with_only_local_assets():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        parts = urlsplit(asset)
        assert parts.scheme == "", asset
        assert parts.netloc == "", asset
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), asset
    for url in re.findall(r"(?:https?:)?//[^\s\"'<>]+", html):
        assert urlsplit(url).netloc in ("", "testserver"), url


def test_swagger_ui_loads_the_local_schema():
    html = Client().get("/api/docs/").content.decode()

    assert 'url: "/api/schema/"' in html
