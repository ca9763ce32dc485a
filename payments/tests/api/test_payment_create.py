"""POST /api/v1/payments: validation, the answer's shape, and what MTN's answers lead to."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests
import responses
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conftest import dispatch, mtn_calls
from gateway.models import AuditEvent, IdempotencyKey
from payments.models import Payment
from payments.states import Submission
from payments.tests.helpers import (
    OMIT,
    PAYMENTS_URL,
    REQUESTTOPAY_URL,
    assert_error,
    assert_nothing_created,
    assert_validation_error,
    payment_body,
    post_json,
)

pytestmark = pytest.mark.django_db

PAYMENT_FIELDS = {
    "id",
    "status",
    "amount",
    "currency",
    "payer",
    "reference",
    "description",
    "metadata",
    "account",
    "failure_reason",
    "amount_refunded",
    "created_at",
    "updated_at",
}


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    return moment


# --- the happy path -------------------------------------------------------------------------


def test_create_answers_201_with_the_payment(alice, mtn_http):
    body = {
        "amount": 1000,
        "currency": "UGX",
        "payer": "256700000000",
        "reference": "order-42",
        "description": "Order 42",
        "metadata": {"order": 42},
    }
    response = post_json(alice.client, PAYMENTS_URL, body)

    assert response.status_code == 201
    payment = response.json()
    assert set(payment) == PAYMENT_FIELDS
    assert uuid.UUID(payment["id"])
    assert payment["status"] == "PENDING"
    assert payment["amount"] == "1000"
    assert payment["currency"] == "UGX"
    assert payment["payer"] == "256700000000"
    assert payment["reference"] == "order-42"
    assert payment["account"] == "default"  # no MTN account rows: the MTN_* settings' one
    assert payment["description"] == "Order 42"
    assert payment["metadata"] == {"order": 42}
    assert payment["failure_reason"] is None
    assert payment["amount_refunded"] == "0"
    assert parse_iso(payment["created_at"]) <= parse_iso(payment["updated_at"])
    assert response.has_header("Idempotent-Replayed") is False

    stored = Payment.objects.get()
    assert str(stored.id) == payment["id"]
    assert stored.tenant == alice.tenant
    assert stored.amount == Decimal("1000")
    # Stored due now: the dispatcher sends it; the create itself called nobody.
    assert stored.submission == Submission.QUEUED
    assert stored.next_attempt_at <= timezone.now()
    assert len(mtn_http.calls) == 0


def test_create_sends_one_request_to_pay_with_the_payment_as_external_id(alice, mtn_http):
    response = post_json(
        alice.client,
        PAYMENTS_URL,
        payment_body(amount="15.50", currency="EUR", payer="+46733123453"),
    )

    assert response.status_code == 201
    dispatch()
    [call] = mtn_calls(mtn_http, "requesttopay")
    sent = json.loads(call.request.body)
    payment = Payment.objects.get()
    assert sent["externalId"] == str(payment.id) == response.json()["id"]
    assert sent["amount"] == "15.50"
    assert sent["currency"] == "EUR"
    assert sent["payer"] == {"partyIdType": "MSISDN", "partyId": "46733123453"}
    assert call.request.headers["X-Reference-Id"] == str(payment.mtn_reference_id)
    assert call.request.headers["X-Target-Environment"] == "sandbox"
    assert mtn_calls(mtn_http, "transfer") == []


def test_omitted_optional_fields_come_back_as_null_null_and_empty_object(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body())

    assert response.status_code == 201
    payment = response.json()
    assert payment["reference"] is None
    assert payment["description"] is None
    assert payment["metadata"] == {}


def test_explicit_nulls_for_optional_fields_are_accepted(alice, mtn_http):
    response = post_json(
        alice.client, PAYMENTS_URL, payment_body(reference=None, description=None, metadata=None)
    )

    assert response.status_code == 201
    payment = response.json()
    assert (payment["reference"], payment["description"], payment["metadata"]) == (None, None, {})


def test_a_leading_plus_on_the_payer_is_dropped(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(payer="+256700000000"))

    assert response.status_code == 201
    assert response.json()["payer"] == "256700000000"
    assert Payment.objects.get().payer == "256700000000"


@pytest.mark.parametrize(
    ("raw_amount", "currency", "shown"),
    [
        ("1000", "UGX", "1000"),
        ('"1000"', "UGX", "1000"),
        ('"1000.0"', "UGX", "1000"),
        ("1000.0", "UGX", "1000"),
        ("1000.000", "RWF", "1000"),
        ("10.50", "EUR", "10.50"),
        ('"10.50"', "EUR", "10.50"),
        ("10.5", "EUR", "10.50"),
        ('"7"', "GHS", "7.00"),
        ("0.01", "ZMW", "0.01"),
        ("25", "XAF", "25"),
        ("25", "XOF", "25"),
        ("1000000000", "UGX", "1000000000"),
    ],
)
def test_amount_as_number_or_decimal_string_is_shown_with_the_currency_decimals(
    alice, mtn_http, raw_amount, currency, shown
):
    raw = f'{{"amount": {raw_amount}, "currency": "{currency}", "payer": "256700000000"}}'
    response = post_json(alice.client, PAYMENTS_URL, raw)

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == shown
    assert response.json()["currency"] == currency
    dispatch()
    assert mtn_calls(mtn_http, "requesttopay")


def test_metadata_of_20_keys_and_nested_values_is_returned_as_given(alice, mtn_http):
    metadata = {f"k{i}": i for i in range(19)}
    metadata["nested"] = {"list": [1, 2.5, "x", None, True], "unicode": "Ouganda ✓"}
    response = post_json(alice.client, PAYMENTS_URL, payment_body(metadata=metadata))

    assert response.status_code == 201
    assert response.json()["metadata"] == metadata
    assert alice.client.get(f"{PAYMENTS_URL}/{response.json()['id']}").json()["metadata"] == (
        metadata
    )


def test_reference_of_64_and_description_of_160_characters_are_accepted(alice, mtn_http):
    response = post_json(
        alice.client, PAYMENTS_URL, payment_body(reference="r" * 64, description="d" * 160)
    )

    assert response.status_code == 201
    assert response.json()["reference"] == "r" * 64
    assert response.json()["description"] == "d" * 160


def test_create_records_created_and_submitted_events_with_the_request_id(alice, mtn_http):
    response = post_json(
        alice.client, PAYMENTS_URL, payment_body(), HTTP_X_REQUEST_ID="req-create-1"
    )

    payment_id = response.json()["id"]
    dispatch()
    events = list(AuditEvent.objects.filter(object_type="payment", object_id=payment_id))
    assert [event.action for event in events] == ["payment.created", "payment.submitted"]
    assert events[0].actor_type == "api_key"
    assert events[0].actor_id == alice.api_key[:12]
    assert events[0].tenant == alice.tenant
    assert events[0].request_id == "req-create-1"
    assert events[1].actor_type == "system"  # the dispatcher submitted it


def test_the_idempotency_key_stores_the_answer_for_at_least_24_hours(alice, mtn_http):
    before = timezone.now()
    response = post_json(alice.client, PAYMENTS_URL, payment_body(), key="stored-24h")

    row = IdempotencyKey.objects.get()
    assert row.key == "stored-24h"
    assert row.tenant == alice.tenant
    assert row.state == IdempotencyKey.State.COMPLETED
    assert row.response_status == 201
    assert row.response_body == response.json()
    assert str(row.resource_id) == response.json()["id"]
    assert row.expires_at >= before + timedelta(hours=24)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_amount", "currency"),
    [
        ("0", "UGX"),
        ('"0"', "UGX"),
        ("-1", "UGX"),
        ('"-1"', "UGX"),
        ("0.00", "EUR"),
        ('"10.505"', "EUR"),
        ("10.505", "EUR"),
        ('"1000.5"', "UGX"),
        ("1000.5", "UGX"),
        ('"0.5"', "RWF"),
        ("1.5", "XAF"),
        ("0.001", "GHS"),
        ("1000000001", "UGX"),
        ('"1000000000.01"', "EUR"),
        ("true", "UGX"),
        ("false", "UGX"),
        ("null", "UGX"),
        ('""', "UGX"),
        ('"NaN"', "UGX"),
        ('"Infinity"', "UGX"),
        ('"-Infinity"', "UGX"),
        ("1e3", "UGX"),
        ("1E3", "UGX"),
        ('"1e3"', "UGX"),
        ("1.0e3", "EUR"),
        ("1e400", "UGX"),
        ('"1 000"', "UGX"),
        ('"1,000"', "UGX"),
        ('" 1000"', "UGX"),
        ('"1000\\n"', "UGX"),
        ('"+1000"', "UGX"),
        ('"0x10"', "UGX"),
        ('"abc"', "UGX"),
        ("[1000]", "UGX"),
        ('{"value": 1000}', "UGX"),
    ],
)
def test_invalid_amounts_are_400_on_amount_and_create_nothing(
    alice, mtn_http, raw_amount, currency
):
    raw = f'{{"amount": {raw_amount}, "currency": "{currency}", "payer": "256700000000"}}'
    response = post_json(alice.client, PAYMENTS_URL, raw)

    assert_validation_error(response, "amount")
    assert_nothing_created(mtn_http)


def test_amount_above_a_configured_maximum_is_400(alice, mtn_http, settings):
    settings.PAYMENT_MAX_AMOUNT = Decimal("5000")
    assert post_json(
        alice.client, PAYMENTS_URL, payment_body(amount=5000), key="a"
    ).status_code == (201)

    response = post_json(alice.client, PAYMENTS_URL, payment_body(amount="5001"), key="b")

    fields = assert_validation_error(response, "amount")
    assert "5000" in fields["amount"][0]
    assert Payment.objects.count() == 1
    dispatch()
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1
    assert IdempotencyKey.objects.filter(key="b").count() == 0


@pytest.mark.parametrize(
    "raw_amount", ["NaN", "Infinity", "-Infinity"], ids=["nan", "infinity", "minus-infinity"]
)
def test_nan_and_infinity_json_literals_are_malformed_json(alice, mtn_http, raw_amount):
    raw = f'{{"amount": {raw_amount}, "currency": "UGX", "payer": "256700000000"}}'
    response = post_json(alice.client, PAYMENTS_URL, raw)

    assert_error(response, 400, "malformed_json")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize("currency", ["ugx", "USDT", "XYZ", "", 800, None, True, ["UGX"]])
def test_unsupported_currency_is_400_and_creates_nothing(alice, mtn_http, currency):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(currency=currency))

    assert_validation_error(response, "currency")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    "payer",
    [
        256700000000,
        2.567e11,
        True,
        None,
        "25670000",
        "2567000000000000",
        "256  700 000 000",  # separators stand alone between digits
        "256 -700000000",
        "-256700000000",
        "256700000000-",
        " 256700000000",
        "+ 256700000000",
        "256_700_000_000",
        "256 700 00",  # 8 digits once the spaces are dropped
        "++256700000000",
        "256700000000\n",
        "",
        ["256700000000"],
        {"msisdn": "256700000000"},
    ],
)
def test_invalid_payer_is_400_and_creates_nothing(alice, mtn_http, payer):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(payer=payer))

    fields = assert_validation_error(response, "payer")
    assert fields["payer"]
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    "written", ["+256 77 212-3456", "256-772-123-456", "256 772 123 456", "+256772123456"]
)
def test_spaces_and_dashes_between_the_payers_digits_are_dropped(alice, mtn_http, written):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(payer=written))

    assert response.status_code == 201, response.content
    assert response.json()["payer"] == "256772123456"


@pytest.mark.parametrize("missing", ["amount", "currency", "payer"])
def test_a_missing_required_field_is_400_and_creates_nothing(alice, mtn_http, missing):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(**{missing: OMIT}))

    fields = assert_validation_error(response, missing)
    assert fields[missing] == ["This field is required."]
    assert_nothing_created(mtn_http)


def test_an_empty_object_names_every_required_field(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, {})

    assert_validation_error(response, "amount", "currency", "payer")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reference", "r" * 65),
        ("reference", 42),
        ("reference", ["order"]),
        ("description", "d" * 161),
        ("description", True),
        ("metadata", {f"k{i}": i for i in range(21)}),
        ("metadata", ["not", "an", "object"]),
        ("metadata", "order=42"),
        ("metadata", 42),
    ],
)
def test_optional_fields_out_of_range_are_400_and_create_nothing(alice, mtn_http, field, value):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(**{field: value}))

    assert_validation_error(response, field)
    assert_nothing_created(mtn_http)


def test_unknown_fields_are_400_and_create_nothing(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(payee="256700000000"))

    fields = assert_validation_error(response, "payee")
    assert fields["payee"] == ["Unknown field."]
    assert_nothing_created(mtn_http)


def test_every_invalid_field_is_reported_at_once(alice, mtn_http):
    response = post_json(
        alice.client,
        PAYMENTS_URL,
        {"amount": 1000, "currency": "XYZ", "payer": 256700000000, "reference": "r" * 65},
    )

    assert_validation_error(response, "currency", "payer", "reference")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize("raw", ["[]", '"a string"', "42", "null", "true"])
def test_a_json_body_that_is_not_an_object_is_400_validation_error(alice, mtn_http, raw):
    response = post_json(alice.client, PAYMENTS_URL, raw)

    error = assert_error(response, 400, "validation_error")
    assert error["fields"]
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"amount": 1000,',
        b"{'amount': 1000}",
        b'{"amount": 1000} trailing',
        b"\xff\xfe{}",
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["text", "truncated", "single-quotes", "trailing", "not-utf8", "deep"],
)
def test_a_body_that_is_not_json_is_malformed_json(alice, mtn_http, raw):
    response = post_json(alice.client, PAYMENTS_URL, raw)

    assert_error(response, 400, "malformed_json")
    assert_nothing_created(mtn_http)


@pytest.mark.parametrize(
    "field",
    ['"reference": "\\ud800"', '"metadata": {"a": "\\udfff"}', '"\\ud800": 1'],
    ids=["reference", "metadata", "field-name"],
)
def test_a_lone_surrogate_escape_is_malformed_json_not_a_server_error(alice, mtn_http, field):
    raw = f'{{"amount": 1000, "currency": "UGX", "payer": "256700000000", {field}}}'
    response = post_json(alice.client, PAYMENTS_URL, raw)

    assert_error(response, 400, "malformed_json")
    assert_nothing_created(mtn_http)


def test_a_form_encoded_body_is_malformed_json_not_415(alice, mtn_http):
    response = alice.client.post(
        PAYMENTS_URL,
        "amount=1000&currency=UGX&payer=256700000000",
        content_type="application/x-www-form-urlencoded",
        HTTP_IDEMPOTENCY_KEY="form",
    )

    assert_error(response, 400, "malformed_json")
    assert_nothing_created(mtn_http)


def test_a_body_larger_than_the_limit_is_413(alice, mtn_http, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = payment_body(description="x" * 100, metadata={"blob": "y" * 2000})
    response = post_json(alice.client, PAYMENTS_URL, body)

    assert_error(response, 413, "payload_too_large")
    assert_nothing_created(mtn_http)


def test_missing_idempotency_key_is_400_and_creates_nothing(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(), key=None)

    assert_error(response, 400, "idempotency_key_missing")
    assert_nothing_created(mtn_http)


def test_an_empty_idempotency_key_is_missing(alice, mtn_http):
    response = post_json(alice.client, PAYMENTS_URL, payment_body(), key="")

    assert_error(response, 400, "idempotency_key_missing")
    assert_nothing_created(mtn_http)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(["UGX", "EUR", "256700000000", "+256700000000", "10.50", "1000", "1e3", ""]),
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(
        st.sampled_from(["amount", "currency", "payer", "reference", "metadata", "extra"]),
        field_values,
    )
)
def test_no_body_causes_a_server_error(alice, mtn_http, body):
    key = uuid.uuid4().hex
    response = post_json(alice.client, PAYMENTS_URL, body, key=key)

    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "validation_error"
        assert not IdempotencyKey.objects.filter(key=key).exists()


# --- what MTN answers -----------------------------------------------------------------------


def test_mtn_rejecting_outright_is_201_failed_with_the_failure_reason(alice, mtn_http):
    # With Prefer: wait, the create answers with MTN's first answer: here a refusal.
    mtn_http.replace(
        responses.POST,
        REQUESTTOPAY_URL,
        status=500,
        json={
            "code": "NOT_ALLOWED_TARGET_ENVIRONMENT",
            "message": "Access to target environment is forbidden.",
        },
    )

    response = post_json(alice.client, PAYMENTS_URL, payment_body(), HTTP_PREFER="wait=5")

    assert response.status_code == 201
    assert response["Preference-Applied"] == "wait=5"
    payment = response.json()
    assert payment["status"] == "FAILED"
    assert payment["failure_reason"] == {
        "code": "NOT_ALLOWED_TARGET_ENVIRONMENT",
        "message": "Access to target environment is forbidden.",
    }
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1  # a configuration error is not retried
    stored = Payment.objects.get()
    assert stored.status == "FAILED"
    assert stored.submission == Submission.REJECTED
    assert stored.next_attempt_at is None
    actions = list(
        AuditEvent.objects.filter(object_id=payment["id"]).values_list("action", flat=True)
    )
    assert actions == ["payment.created", "payment.failed"]
    detail = alice.client.get(f"{PAYMENTS_URL}/{payment['id']}").json()
    assert detail["status"] == "FAILED"
    assert detail["failure_reason"]["code"] == "NOT_ALLOWED_TARGET_ENVIRONMENT"


def test_mtn_rejecting_a_payer_is_201_failed(alice, mtn_http):
    mtn_http.replace(
        responses.POST,
        REQUESTTOPAY_URL,
        status=500,
        json={"code": "PAYER_NOT_FOUND", "message": "Payer not found"},
    )

    response = post_json(alice.client, PAYMENTS_URL, payment_body())
    assert response.json()["status"] == "PENDING"  # answered at once
    dispatch()

    response = alice.client.get(f"{PAYMENTS_URL}/{response.json()['id']}")
    assert response.json()["status"] == "FAILED"
    assert response.json()["failure_reason"] == {
        "code": "PAYER_NOT_FOUND",
        "message": "Payer not found",
    }


def test_mtn_unavailable_is_pending_due_for_the_next_try_within_5s(alice, mtn_http):
    mtn_http.replace(
        responses.POST,
        REQUESTTOPAY_URL,
        status=503,
        json={"code": "SERVICE_UNAVAILABLE", "message": "Service unavailable"},
    )

    response = post_json(alice.client, PAYMENTS_URL, payment_body())
    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    assert response.json()["failure_reason"] is None
    dispatch()
    answered_at = timezone.now()

    assert len(mtn_calls(mtn_http, "requesttopay")) == 1  # one try per round of the dispatcher
    stored = Payment.objects.get()
    assert stored.submission == Submission.QUEUED
    assert stored.next_attempt_at is not None
    assert answered_at < stored.next_attempt_at <= answered_at + timedelta(seconds=5)
    actions = list(
        AuditEvent.objects.filter(object_type="payment").values_list("action", flat=True)
    )
    assert actions == ["payment.created", "payment.submit_deferred"]


def test_every_try_uses_the_same_mtn_reference(alice, mtn_http):
    mtn_http.replace(responses.POST, REQUESTTOPAY_URL, status=503)

    post_json(alice.client, PAYMENTS_URL, payment_body())
    dispatch()
    Payment.objects.update(next_attempt_at=timezone.now())
    dispatch()

    references = {
        call.request.headers["X-Reference-Id"]
        for call in mtn_http.calls
        if "requesttopay" in call.request.url
    }
    assert references == {str(Payment.objects.get().mtn_reference_id)}
    assert len(mtn_calls(mtn_http, "requesttopay")) == 2


def test_mtn_unreachable_is_201_pending(alice, mtn_http):
    mtn_http.replace(
        responses.POST, REQUESTTOPAY_URL, body=requests.ConnectionError("connection refused")
    )

    response = post_json(alice.client, PAYMENTS_URL, payment_body())
    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    dispatch()
    answered_at = timezone.now()

    stored = Payment.objects.get()
    assert stored.submission == Submission.QUEUED
    assert stored.next_attempt_at <= answered_at + timedelta(seconds=5)
    assert stored.next_attempt_at > timezone.now() - timedelta(seconds=5)
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1


def test_mtn_409_resource_already_exist_counts_as_submitted(alice, mtn_http):
    mtn_http.replace(
        responses.POST,
        REQUESTTOPAY_URL,
        status=409,
        json={"code": "RESOURCE_ALREADY_EXIST", "message": "Duplicated reference id."},
    )

    response = post_json(alice.client, PAYMENTS_URL, payment_body())
    dispatch()

    assert response.status_code == 201
    assert response.json()["status"] == "PENDING"
    assert response.json()["failure_reason"] is None
    stored = Payment.objects.get()
    assert stored.submission == Submission.SUBMITTED
    assert stored.submitted_at is not None
    submitted = AuditEvent.objects.get(object_type="payment", action="payment.submitted")
    assert submitted.data["already_existed"] is True
    assert len(mtn_calls(mtn_http, "requesttopay")) == 1
