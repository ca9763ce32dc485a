"""X-Request-ID on every response, and the error envelope for paths DRF never sees."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from payments import selectors
from payments.tests.helpers import PAYMENTS_URL, assert_error, payment_body, post_json

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/nope", "/api/v1/payments/", "/api/v1/payments/x/y/z", "/api/"]
)
def test_an_unknown_path_under_api_is_404_not_found(alice, path):
    assert_error(alice.client.get(path), 404, "not_found")
    assert_error(APIClient().post(path, {}, format="json"), 404, "not_found")


def test_an_unknown_api_path_answers_json_even_when_html_is_asked_for(alice):
    response = alice.client.get("/api/v1/nope", HTTP_ACCEPT="text/html")

    assert_error(response, 404, "not_found")


def test_a_client_request_id_is_echoed(alice, mtn_http):
    response = post_json(
        alice.client, PAYMENTS_URL, payment_body(), HTTP_X_REQUEST_ID="order-42.try:1_a-b"
    )

    assert response.status_code == 201
    assert response["X-Request-ID"] == "order-42.try:1_a-b"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", PAYMENTS_URL, 200),
        ("get", "/api/v1/nope", 404),
        ("delete", PAYMENTS_URL, 405),
        ("get", "/healthz", 200),
        ("get", "/readyz", 200),
        ("get", "/api/schema/", 200),
    ],
)
def test_every_response_carries_a_request_id(alice, method, path, status):
    response = getattr(alice.client, method)(path)
    echoed = getattr(alice.client, method)(path, HTTP_X_REQUEST_ID="req-123")

    assert response.status_code == status
    assert GENERATED_ID.match(response["X-Request-ID"])
    assert echoed["X-Request-ID"] == "req-123"


def test_error_responses_carry_the_request_id(alice, mtn_http):
    unauthenticated = APIClient().get(PAYMENTS_URL, HTTP_X_REQUEST_ID="r-401")
    invalid = post_json(alice.client, PAYMENTS_URL, {}, HTTP_X_REQUEST_ID="r-400")
    malformed = post_json(alice.client, PAYMENTS_URL, "{", HTTP_X_REQUEST_ID="r-400b")

    assert (unauthenticated.status_code, unauthenticated["X-Request-ID"]) == (401, "r-401")
    assert (invalid.status_code, invalid["X-Request-ID"]) == (400, "r-400")
    assert (malformed.status_code, malformed["X-Request-ID"]) == (400, "r-400b")


def test_each_request_gets_its_own_generated_id(alice):
    first = alice.client.get(PAYMENTS_URL)["X-Request-ID"]
    second = alice.client.get(PAYMENTS_URL)["X-Request-ID"]

    assert first != second


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "semi;colon", "x" * 129, "new\nline", "<script>", "caf\u00e9"],
    ids=["empty", "space", "semicolon", "too-long", "newline", "markup", "non-ascii"],
)
def test_an_insane_request_id_is_replaced(alice, incoming):
    response = alice.client.get(PAYMENTS_URL, HTTP_X_REQUEST_ID=incoming)

    assert response.status_code == 200
    assert GENERATED_ID.match(response["X-Request-ID"])


def test_a_request_id_of_128_characters_is_echoed(alice):
    response = alice.client.get(PAYMENTS_URL, HTTP_X_REQUEST_ID="r" * 128)

    assert response["X-Request-ID"] == "r" * 128


def test_an_unexpected_error_is_a_500_envelope_with_the_request_id(alice, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "transfer_list", explode)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_X_API_KEY=alice.api_key, HTTP_X_TENANT_ID="alice")

    response = client.get(PAYMENTS_URL, HTTP_X_REQUEST_ID="r-500")

    error = assert_error(response, 500, "internal_error")
    assert "boom" not in error["message"]
    assert response["X-Request-ID"] == "r-500"
