"""classify_response / classify_exception: the retry decision for every MTN failure shape."""

from __future__ import annotations

import json

import pytest
import requests

from mtn.errors import (
    MtnAuthenticationError,
    MtnConfigurationError,
    MtnConflictError,
    MtnError,
    MtnNetworkError,
    MtnNotFoundError,
    MtnProtocolError,
    MtnRateLimitedError,
    MtnRejectedError,
    MtnRetryableError,
    classify_exception,
    classify_response,
)


def make_response(
    status: int, body: object = None, headers: dict | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if body is None:
        response._content = b""
    elif isinstance(body, bytes | str):
        response._content = body.encode() if isinstance(body, str) else body
    else:
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
    response.headers.update(headers or {})
    return response


def momo(code: str, message: str = "text") -> dict:
    return {"code": code, "message": message}


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "retryable"),
    [
        (500, momo("NOT_ALLOWED"), MtnConfigurationError, "NOT_ALLOWED", False),
        (
            500,
            momo("NOT_ALLOWED_TARGET_ENVIRONMENT"),
            MtnConfigurationError,
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
            False,
        ),
        (
            500,
            momo("INVALID_CALLBACK_URL_HOST"),
            MtnConfigurationError,
            "INVALID_CALLBACK_URL_HOST",
            False,
        ),
        (500, momo("INVALID_CURRENCY"), MtnConfigurationError, "INVALID_CURRENCY", False),
        (
            400,
            momo("NOT_ALLOWED_TARGET_ENVIRONMENT"),
            MtnConfigurationError,
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
            False,
        ),
        (500, momo("PAYER_NOT_FOUND"), MtnRejectedError, "PAYER_NOT_FOUND", False),
        (500, momo("PAYEE_NOT_FOUND"), MtnRejectedError, "PAYEE_NOT_FOUND", False),
        (500, momo("NOT_ENOUGH_FUNDS"), MtnRejectedError, "NOT_ENOUGH_FUNDS", False),
        (
            500,
            momo("INTERNAL_PROCESSING_ERROR"),
            MtnRetryableError,
            "INTERNAL_PROCESSING_ERROR",
            True,
        ),
        (500, momo("SERVICE_UNAVAILABLE"), MtnRetryableError, "SERVICE_UNAVAILABLE", True),
        (503, momo("SERVICE_UNAVAILABLE"), MtnRetryableError, "SERVICE_UNAVAILABLE", True),
        (400, momo("SERVICE_UNAVAILABLE"), MtnRetryableError, "SERVICE_UNAVAILABLE", True),
        (502, None, MtnRetryableError, "HTTP_502", True),
        (503, "<html>Service Unavailable</html>", MtnRetryableError, "HTTP_503", True),
        (
            504,
            {"statusCode": 504, "message": "Gateway Timeout"},
            MtnRetryableError,
            "HTTP_504",
            True,
        ),
        (500, None, MtnRetryableError, "HTTP_500", True),
        (500, "not json", MtnRetryableError, "HTTP_500", True),
        (500, {"error": "login_failed"}, MtnAuthenticationError, "login_failed", False),
        (
            401,
            {"statusCode": 401, "message": "Access denied due to invalid subscription key."},
            MtnAuthenticationError,
            "SUBSCRIPTION_KEY_REJECTED",
            False,
        ),
        (401, None, MtnAuthenticationError, "UNAUTHORIZED", False),
        (
            403,
            {"statusCode": 403, "message": "Forbidden"},
            MtnAuthenticationError,
            "FORBIDDEN",
            False,
        ),
        (404, momo("RESOURCE_NOT_FOUND"), MtnNotFoundError, "RESOURCE_NOT_FOUND", False),
        (409, momo("RESOURCE_ALREADY_EXIST"), MtnConflictError, "RESOURCE_ALREADY_EXIST", False),
        (400, None, MtnRejectedError, "HTTP_400", False),
        (400, momo("SOMETHING_ELSE"), MtnRejectedError, "SOMETHING_ELSE", False),
        (410, None, MtnRejectedError, "HTTP_410", False),
        (302, None, MtnProtocolError, "UNEXPECTED_RESPONSE", False),
    ],
)
def test_classify_response_decides_class_code_and_retry(status, body, cls, code, retryable):
    error = classify_response(make_response(status, body))

    assert type(error) is cls
    assert error.code == code
    assert error.retryable is retryable
    assert error.status_code == status
    assert isinstance(error, MtnError)


def test_message_comes_from_body():
    error = classify_response(
        make_response(500, momo("INVALID_CURRENCY", "Currency not supported."))
    )

    assert error.message == "Currency not supported."


def test_rate_limit_is_retryable_and_reads_retry_after_header():
    response = make_response(
        429,
        {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."},
        {"Retry-After": "3"},
    )

    error = classify_response(response)

    assert isinstance(error, MtnRateLimitedError)
    assert error.retryable is True
    assert error.retry_after == 3.0


def test_rate_limit_without_header_reads_apim_message():
    response = make_response(
        429, {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."}
    )

    assert classify_response(response).retry_after == 7.0


def test_rate_limit_with_http_date_retry_after():
    response = make_response(429, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    error = classify_response(response)

    assert error.retryable is True
    assert error.retry_after == 0.0  # a date in the past means "now"


def test_rate_limit_without_any_hint_has_no_retry_after():
    error = classify_response(make_response(429, None))

    assert error.retryable is True
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (requests.ConnectTimeout("x"), "CONNECT_TIMEOUT"),
        (requests.ReadTimeout("x"), "TIMEOUT"),
        (requests.ConnectionError("refused"), "NETWORK_ERROR"),
        (requests.exceptions.ChunkedEncodingError("reset"), "NETWORK_ERROR"),
    ],
)
def test_network_failures_are_retryable(exc, code):
    error = classify_exception(exc)

    assert isinstance(error, MtnNetworkError)
    assert error.code == code
    assert error.retryable is True
    assert error.status_code is None


def test_tls_failure_is_not_retried():
    error = classify_exception(requests.exceptions.SSLError("bad cert"))

    assert isinstance(error, MtnConfigurationError)
    assert error.retryable is False
