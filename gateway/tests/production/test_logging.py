"""JSON log lines with request, tenant and payment ids; payer numbers masked; no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

from gateway.logging import JsonFormatter, RedactingFilter, log_context, mask_msisdn, redact
from gateway.request_context import current_request_id
from gateway.tests.production.conftest import PAYER, PAYER_MASKED

API_KEY = "mgw_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="


class Captured:
    """Every record any logger emits, through the same filter and formatter as production."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(RedactingFilter())
        self.handler.setLevel(logging.DEBUG)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(level)


def format_one(message: str, *args: object, **extra: object) -> dict:
    record = logging.LogRecord("test", logging.WARNING, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    RedactingFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


# --- a full payment --------------------------------------------------------------------------


@pytest.mark.django_db
def test_full_payment_logs_mask_the_payer_and_never_show_secrets(full_payment, alice, captured):
    done = full_payment()
    text = captured.text
    lines = captured.lines

    assert PAYER not in text
    assert alice.api_key not in text
    assert alice.tenant.webhook_secret not in text
    assert done.payment.callback_token not in text
    created = [line for line in lines if line.get("event") == "payment.created"]
    assert len(created) == 1
    assert PAYER_MASKED in created[0]["message"]
    assert created[0]["tenant"] == "alice"
    assert created[0]["payment_id"] == str(done.payment.id)
    assert created[0]["request_id"] == done.create_response["X-Request-ID"]
    succeeded = [line for line in lines if line.get("event") == "payment.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0]["payment_id"] == str(done.payment.id)


@pytest.mark.django_db
def test_each_api_request_gets_one_access_line_with_request_tenant_and_payment(
    full_payment, captured
):
    done = full_payment()

    access = [line for line in captured.lines if line["logger"] == "gateway.access"]
    create = next(line for line in access if line["method"] == "POST" and line["status"] == 201)
    callback = next(line for line in access if line["method"] == "PUT")

    assert create["event"] == "http.request"
    assert create["request_id"] == done.create_response["X-Request-ID"]
    assert create["tenant"] == "alice"
    assert create["payment_id"] == str(done.payment.id)
    assert create["path"] == "/api/v1/payments"
    assert isinstance(create["duration_ms"], float)
    # The callback URL's token is a secret: the path is logged without it.
    assert callback["path"] == "/api/v1/webhooks/mtn/[redacted]"
    assert callback["request_id"] == done.callback_response["X-Request-ID"]


@pytest.mark.django_db
def test_a_404_is_one_masked_access_line_and_no_django_request_warning(captured, db):
    response = Client().put(
        f"/api/v1/webhooks/mtn/unknown-token-{PAYER}",
        "{}",
        content_type="application/json",
        HTTP_X_API_KEY=API_KEY,
    )

    assert response.status_code == 404
    # gateway.access already logs the request: django.request's 4xx warning would repeat it.
    assert [line["logger"] for line in captured.lines] == ["gateway.access"]
    assert captured.lines[0]["request_id"] == response["X-Request-ID"]
    assert PAYER not in captured.text
    assert API_KEY not in captured.text


def test_django_request_errors_go_through_the_masking_filter(captured):
    logging.getLogger("django.request").error("Internal Server Error: /x?payer=%s", PAYER)

    errors = [line for line in captured.lines if line["logger"] == "django.request"]
    assert len(errors) == 1
    assert errors[0]["level"] == "ERROR"
    assert PAYER not in captured.text
    assert PAYER_MASKED in captured.text


@pytest.mark.django_db
def test_the_console_handler_of_the_settings_masks_too(settings):
    console = logging.getLogger().handlers
    assert any(isinstance(f, RedactingFilter) for handler in console for f in handler.filters), (
        "settings.LOGGING's console handler must carry the redacting filter"
    )
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate


# --- the formatter and the filter --------------------------------------------------------


def test_json_formatter_writes_one_valid_object_with_the_request_id():
    token = current_request_id.set("req-123")
    try:
        line = JsonFormatter().format(
            logging.LogRecord("gateway.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
        )
    finally:
        current_request_id.reset(token)

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "hello you"
    assert entry["request_id"] == "req-123"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "gateway.x"
    assert entry["time"].endswith("Z")
    assert entry["tenant"] is None
    assert "payment_id" not in entry
    assert "event" not in entry


def test_json_formatter_adds_tenant_payment_event_extras_and_the_exception():
    try:
        raise ValueError(f"payer {PAYER} refused")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("w", logging.ERROR, __file__, 1, "failed", (), exc_info)
    record.event = "payment.failed"
    record.attempt = 3
    with log_context(tenant="alice", payment_id="5f0c0000-0000-4000-8000-000000000001"):
        RedactingFilter().filter(record)
        entry = json.loads(JsonFormatter().format(record))

    assert entry["tenant"] == "alice"
    assert entry["payment_id"] == "5f0c0000-0000-4000-8000-000000000001"
    assert entry["event"] == "payment.failed"
    assert entry["attempt"] == 3
    assert "ValueError" in entry["exception"]
    assert PAYER_MASKED in entry["exception"]
    assert PAYER not in json.dumps(entry)


def test_filter_masks_msisdns_in_messages_args_and_extras():
    entry = format_one(
        "payer %s, again +%s",
        PAYER,
        PAYER,
        body={"payer": {"partyId": PAYER}, "numbers": [PAYER, 256772123456]},
    )

    assert entry["message"] == f"payer {PAYER_MASKED}, again +{PAYER_MASKED}"
    assert entry["body"] == {
        "payer": {"partyId": PAYER_MASKED},
        "numbers": [PAYER_MASKED, PAYER_MASKED],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256772123456", "*********456"),
        ("46733123450", "********450"),
        ("123456789", "******789"),
        ("1234567890123456", "1234567890123456"),  # 16 digits: not an MSISDN
        ("12345678", "12345678"),
        ("5f0c1234-1234-4123-8123-123456789012", "5f0c1234-1234-4123-8123-123456789012"),
        ("amount 0.123456789", "amount 0.123456789"),
        ("/msisdn/256772123456/active", "/msisdn/*********456/active"),
    ],
)
def test_msisdn_masking_keeps_the_last_three_digits_and_leaves_ids_alone(text, expected):
    assert mask_msisdn(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"key {API_KEY}",
        f"secret {WEBHOOK_SECRET}",
        "Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.payload.sig",
        "{'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}",
        "X-API-Key: some-other-credential",
        "api_key=hunter2hunter2",
    ],
)
def test_secrets_are_redacted(text):
    redacted = redact(text)

    assert "[redacted]" in redacted
    for secret in (
        API_KEY,
        WEBHOOK_SECRET,
        "eyJ0eXAi",
        "dXNlcjpwYXNz",
        "some-other-credential",
        "hunter2",
    ):
        assert secret not in redacted


def test_configured_secrets_are_redacted_wherever_they_appear(settings):
    settings.MTN_COLLECTION_API_KEY = "f1e2d3c4b5a69788a1b2c3d4e5f60718"

    entry = format_one("MTN said: key f1e2d3c4b5a69788a1b2c3d4e5f60718 is wrong")

    assert "f1e2d3c4b5a69788a1b2c3d4e5f60718" not in json.dumps(entry)


def test_extras_named_like_secrets_lose_their_value():
    entry = format_one(
        "calling MTN",
        headers={"Authorization": "Bearer abc.def", "X-Reference-Id": "ref-1"},
        api_key="anything",
    )

    assert entry["headers"] == {"Authorization": "[redacted]", "X-Reference-Id": "ref-1"}
    assert entry["api_key"] == "[redacted]"


def test_a_bad_format_string_still_gives_a_line():
    entry = format_one("%d items", "not a number")

    assert "%d items" in entry["message"]
