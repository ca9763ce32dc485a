"""The error envelope and the mapping of Django's and DRF's own errors onto the contract."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions as drf_exceptions

from gateway.errors import (
    GatewayError,
    ValidationFailed,
    api_exception_handler,
    error_body,
    translate_exception,
)


def test_error_body_adds_fields_only_when_there_are_some():
    assert error_body("not_found", "Not found.") == {
        "error": {"code": "not_found", "message": "Not found."}
    }
    assert error_body("validation_error", "Bad.", {"amount": ["Too big."]}) == {
        "error": {"code": "validation_error", "message": "Bad.", "fields": {"amount": ["Too big."]}}
    }


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (drf_exceptions.ParseError("bad"), 400, "malformed_json"),
        (drf_exceptions.ValidationError({"amount": ["x"]}), 400, "validation_error"),
        (drf_exceptions.NotAuthenticated(), 401, "authentication_failed"),
        (drf_exceptions.AuthenticationFailed(), 401, "authentication_failed"),
        (drf_exceptions.PermissionDenied(), 403, "forbidden"),
        (drf_exceptions.NotFound(), 404, "not_found"),
        (Http404(), 404, "not_found"),
        (drf_exceptions.MethodNotAllowed("DELETE"), 405, "method_not_allowed"),
        (drf_exceptions.Throttled(wait=12.2), 429, "rate_limited"),
    ],
)
def test_framework_errors_become_the_envelope(exc, status, code):
    response = api_exception_handler(exc, {})

    assert response.status_code == status
    assert response.data["error"]["code"] == code
    assert response.data["error"]["message"]


def test_throttled_sets_a_whole_number_retry_after():
    response = api_exception_handler(drf_exceptions.Throttled(wait=12.2), {})

    assert response["Retry-After"] == "13"


def test_nested_validation_errors_are_flattened_into_fields():
    exc = drf_exceptions.ValidationError(
        {"metadata": {"a": ["Bad."]}, "non_field_errors": ["Whole body."], "list": [{"x": ["y"]}]}
    )

    translated = translate_exception(exc)

    assert isinstance(translated, ValidationFailed)
    assert translated.fields == {
        "metadata.a": ["Bad."],
        "non_field_errors": ["Whole body."],
        "list[0].x": ["y"],
    }


def test_unknown_exceptions_stay_unhandled():
    assert api_exception_handler(RuntimeError("boom"), {}) is None


def test_gateway_errors_keep_their_code_status_and_headers():
    class Teapot(GatewayError):
        code = "teapot"
        http_status = 418

    response = api_exception_handler(Teapot("Short and stout.", headers={"X-Tea": "1"}), {})

    assert response.status_code == 418
    assert response.data == {"error": {"code": "teapot", "message": "Short and stout."}}
    assert response["X-Tea"] == "1"
