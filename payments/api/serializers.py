"""Request validation for creating payments, payouts and refunds, and response shapes for
OpenAPI.

Validation is strict on types: a JSON number is never silently turned into a string (or
the reverse), unknown fields are refused, and nothing that would make the database choke
(NUL characters, non-finite numbers, huge metadata) gets through to become a 5xx.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema_field
from rest_framework import serializers

from gateway.money import (
    CURRENCY_DECIMALS,
    SUPPORTED_CURRENCIES,
    MoneyError,
    parse_amount,
    parse_currency,
)
from payments.models import PayoutBatch
from payments.states import Status

# 9 to 15 digits, an optional leading +, and a space or a dash allowed between two digits
# ("+256 77 212-3456"): the + and the separators are dropped.
MSISDN_PATTERN = r"^\+?[0-9](?:[ -]?[0-9]){8,14}$"
_MSISDN_RE = re.compile(r"\+?([0-9](?:[ -]?[0-9]){8,14})", re.ASCII)

PayoutBatchState = PayoutBatch.State
METADATA_MAX_KEYS = 20
METADATA_MAX_BYTES = 4096


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            {
                # Digits, an optional fraction, greater than zero (parse_amount's rules).
                "type": "string",
                "pattern": r"^(0*[1-9][0-9]*(\.[0-9]+)?|0+\.[0-9]*[1-9][0-9]*)$",
                "maxLength": 30,
            },
        ],
        "description": "A JSON number or a decimal string, greater than zero, at most the "
        "gateway's maximum (1000000000 unless its operator set another); no more decimals than "
        "the currency has (UGX, RWF, XAF, XOF: none; the others: two); no exponent.",
        "example": "15.00",
    }
)
class AmountField(serializers.Field):
    """Keeps the raw value; it is parsed in ``validate`` once the currency is known."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> str:
        return str(value)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans and objects instead of coercing them."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "enum": list(SUPPORTED_CURRENCIES),
        "description": "ISO 4217 code of a supported currency (MTN takes only its market's).",
        "example": "EUR",
    }
)
class CurrencyField(serializers.CharField):
    """A CharField (checked by ``validate_currency``) documented with the currencies it takes."""


@extend_schema_field({"type": "string", "pattern": MSISDN_PATTERN, "example": "256772123456"})
class MsisdnField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be a string holding an MSISDN: 9 to 15 digits with the country code, "
        "an optional leading +, spaces or dashes between digits allowed."
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        match = _MSISDN_RE.fullmatch(data)  # fullmatch: "$" also matches before a "\n"
        if not match:
            self.fail("invalid")
        return match.group(1).replace(" ", "").replace("-", "")

    def to_representation(self, value: Any) -> str:
        return str(value)


def _check_json_value(value: Any, depth: int = 0) -> None:
    if depth > 8:
        raise serializers.ValidationError("Is nested too deeply (at most 8 levels).")
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("Must not contain NUL characters.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise serializers.ValidationError("Numbers must be finite.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "maxProperties": METADATA_MAX_KEYS,
        "description": "Your own key-value data, returned as given (at most 20 keys, 4 KB).",
        "example": {"order": 42},
    }
)
class MetadataField(serializers.Field):
    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        if len(data) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"Has more than {METADATA_MAX_KEYS} keys.")
        _check_json_value(data)
        if len(json.dumps(data, ensure_ascii=False).encode("utf-8")) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(f"Is larger than {METADATA_MAX_BYTES} bytes.")
        # Drop the parser's number subclasses so that the stored JSON is plain.
        return json.loads(json.dumps(data))

    def to_representation(self, value: Any) -> Any:
        return value


class TransferCreateSerializer(serializers.Serializer):
    amount = AmountField()
    currency = CurrencyField()
    reference = StrictCharField(
        required=False, allow_null=True, max_length=64, help_text="Your reference."
    )
    description = StrictCharField(
        required=False,
        allow_null=True,
        max_length=160,
        help_text="Shown to the payer by MTN where possible.",
    )
    metadata = MetadataField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors = {str(name)[:64]: ["Unknown field."] for name in unknown}
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                errors = {**exc.detail, **self._amount_errors(data, exc.detail), **errors}
            raise serializers.ValidationError(errors or exc.detail) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return validated

    @staticmethod
    def _amount_errors(data: Any, errors: dict[str, Any]) -> dict[str, list[str]]:
        """The amount's own problems, reported even when another field failed first."""
        if not isinstance(data, dict) or "amount" not in data or "amount" in errors:
            return {}
        currency = data.get("currency")
        if not (isinstance(currency, str) and currency in CURRENCY_DECIMALS):
            currency = None
        try:
            parse_amount(data["amount"], currency)
        except MoneyError as exc:
            return {"amount": [str(exc)]}
        return {}

    def validate_currency(self, value: Any) -> str:
        try:
            return parse_currency(value)
        except MoneyError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["amount"] = parse_amount(attrs["amount"], attrs.get("currency"))
        except MoneyError as exc:
            raise serializers.ValidationError({"amount": [str(exc)]}) from exc
        if attrs.get("metadata") is None:
            attrs["metadata"] = {}
        return attrs


class PaymentCreateSerializer(TransferCreateSerializer):
    payer = MsisdnField(
        help_text="The payer's MSISDN with the country code; a leading + and spaces or dashes "
        "between digits are dropped."
    )


class PayoutCreateSerializer(TransferCreateSerializer):
    payee = MsisdnField(
        help_text="The payee's MSISDN with the country code; a leading + and spaces or dashes "
        "between digits are dropped."
    )


class FailureReasonSerializer(serializers.Serializer):
    """Why it FAILED: MTN's reason code and a sentence you can show the payer."""

    code = serializers.CharField()
    message = serializers.CharField()


@extend_schema_field({"type": "string", "example": "default"})
class AccountNameField(serializers.CharField):
    """The name of an MTN account, as payments, payouts and refunds show it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "The name of the MTN account that carries it (see MTN accounts), chosen when it is "
            "created and never changed; `default` is the platform's account.",
        )
        super().__init__(**kwargs)


# Response shapes, for the OpenAPI document only (answers are built in representation.py);
# the docstrings below are the document's descriptions, written for merchants.
class TransferSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Status.choices)
    amount = serializers.CharField(help_text="With exactly the currency's number of decimals.")
    currency = serializers.ChoiceField(choices=list(SUPPORTED_CURRENCIES))
    reference = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    account = AccountNameField()
    failure_reason = FailureReasonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentSerializer(TransferSerializer):
    """A payment: money asked from a payer's MoMo wallet. `status` starts `PENDING` and ends
    `SUCCESSFUL` or `FAILED` (then `failure_reason` says why), never to change again."""

    payer = serializers.CharField()
    amount_refunded = serializers.CharField(
        help_text="The sum of its SUCCESSFUL refunds, with the currency's decimals."
    )


class PayoutSerializer(TransferSerializer):
    """A payout: money sent from your balance to a payee's MoMo wallet. `status` starts
    `PENDING` and ends `SUCCESSFUL` or `FAILED` (the amount is then given back)."""

    payee = serializers.CharField()
    batch = serializers.UUIDField(
        allow_null=True, help_text="The payout batch it was created in; null for a lone payout."
    )


class PaymentListSerializer(serializers.Serializer):
    results = PaymentSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class PayoutListSerializer(serializers.Serializer):
    results = PayoutSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """One step of an object's audit trail: what happened, when, and who did it."""

    at = serializers.DateTimeField()
    action = serializers.CharField()
    actor = serializers.CharField()
    data = serializers.DictField()


class EventListSerializer(serializers.Serializer):
    results = EventSerializer(many=True)


# The amount follows the money rules of the payment's currency, given as
# context["currency"]. Unknown fields are refused.
class RefundCreateSerializer(serializers.Serializer):
    """Both fields may be left out: the refund is then of all that is left to refund."""

    amount = AmountField(
        required=False,
        allow_null=True,
        help_text="Defaults to all that is left to refund of the payment.",
    )
    reason = StrictCharField(
        required=False, allow_null=True, max_length=160, help_text="Why the payment is refunded."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors = {str(name)[:64]: ["Unknown field."] for name in unknown}
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                errors = {**exc.detail, **errors}
            raise serializers.ValidationError(errors or exc.detail) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return validated

    def validate_amount(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_amount(value, self.context["currency"])
        except MoneyError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class RefundSerializer(serializers.Serializer):
    """A refund of a payment, paid back to its payer through the MTN account that took it.
    `status` starts `PENDING` and ends `SUCCESSFUL` or `FAILED`."""

    id = serializers.UUIDField()
    payment = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Status.choices)
    amount = serializers.CharField(help_text="With exactly the currency's number of decimals.")
    currency = serializers.ChoiceField(choices=list(SUPPORTED_CURRENCIES))
    reason = serializers.CharField(allow_null=True)
    account = AccountNameField(
        help_text="The MTN account that took its payment, which is the one that gives it back."
    )
    failure_reason = FailureReasonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RefundListSerializer(serializers.Serializer):
    results = RefundSerializer(many=True)
    next = serializers.URLField(allow_null=True)


# --- Examples for Swagger UI's "Try it out" (the README's walk-through, on the sandbox) ---------

EXAMPLE_PARTY = "256772123456"
EXAMPLE_ID = "5f0c6a8e-7d1b-4c3a-9e2f-1a2b3c4d5e6f"


def _party(kind: str) -> str:
    return "payer" if kind == "payment" else "payee"


def create_example(kind: str) -> OpenApiExample:
    """A create body that works against the MTN sandbox (which takes only EUR)."""
    return OpenApiExample(
        "Order 42",
        summary="15.00 EUR for order 42 (the MTN sandbox takes only EUR)",
        value={
            "amount": "15.00",
            "currency": "EUR",
            _party(kind): EXAMPLE_PARTY,
            "reference": "order-42",
            "description": "Order 42",
            "metadata": {"order": 42},
        },
        request_only=True,
    )


def object_value(kind: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": EXAMPLE_ID,
        "status": "PENDING",
        "amount": "15.00",
        "currency": "EUR",
        _party(kind): EXAMPLE_PARTY,
        "reference": "order-42",
        "description": "Order 42",
        "metadata": {"order": 42},
        "account": "default",
        "failure_reason": None,
        "created_at": "2026-11-27T09:27:35.355444Z",
        "updated_at": "2026-11-27T09:27:35.403142Z",
    }
    if kind == "payment":
        value["amount_refunded"] = "0.00"
    if kind == "payout":
        value["batch"] = None
    return value


def object_example(kind: str, *, status_code: str) -> OpenApiExample:
    return OpenApiExample(
        "Pending",
        summary=f"A {kind} waiting for MTN's answer",
        value=object_value(kind),
        response_only=True,
        status_codes=[status_code],
    )


def list_example(kind: str) -> OpenApiExample:
    return OpenApiExample(
        "Page",
        summary=f"One page of {kind}s (the last: next is null)",
        value={"results": [object_value(kind)], "next": None},
        response_only=True,
        status_codes=["200"],
    )


def id_parameter(kind: str) -> OpenApiParameter:
    return OpenApiParameter(
        "id",
        OpenApiTypes.UUID,
        OpenApiParameter.PATH,
        description=f"The {kind}'s `id`, as the create answered it.",
        examples=[OpenApiExample("Id", summary=f"A {kind} id", value=EXAMPLE_ID)],
    )


# --- payout batches (documentation only: parsed in batch_input.py, shown by representation.py)


class PayoutBatchItemInputSerializer(serializers.Serializer):
    payee = MsisdnField(help_text="The payee's MSISDN with country code, digits only.")
    amount = AmountField()
    reference = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Your reference for this payout; unique within the batch.",
    )
    description = serializers.CharField(
        required=False, allow_null=True, max_length=160, help_text="Shown to the payee by MTN."
    )
    metadata = MetadataField(required=False, allow_null=True)


class PayoutBatchCreateSerializer(serializers.Serializer):
    currency = CurrencyField()
    reference = serializers.CharField(
        required=False, allow_null=True, max_length=64, help_text="Your reference for the batch."
    )
    description = serializers.CharField(required=False, allow_null=True, max_length=160)
    items = PayoutBatchItemInputSerializer(
        many=True, help_text="1 to 5,000 payouts, each following a payout's rules."
    )


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "PENDING": {"type": "integer", "minimum": 0},
            "SUCCESSFUL": {"type": "integer", "minimum": 0},
            "FAILED": {"type": "integer", "minimum": 0},
        },
        "required": ["PENDING", "SUCCESSFUL", "FAILED"],
        "additionalProperties": False,
    }
)
class BatchCountsField(serializers.DictField):
    """How many of the batch's payouts are in each status."""


class PayoutBatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=PayoutBatchState.choices,
        help_text="COMPLETED once every payout of the batch is final (SUCCESSFUL or FAILED).",
    )
    currency = serializers.CharField()
    reference = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    count = serializers.IntegerField(help_text="How many payouts the batch holds.")
    total_amount = serializers.CharField(help_text="The sum of its payouts' amounts.")
    counts = BatchCountsField()
    amount_succeeded = serializers.CharField(help_text="The sum of its SUCCESSFUL payouts.")
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class PayoutBatchListSerializer(serializers.Serializer):
    results = PayoutBatchSerializer(many=True)
    next = serializers.URLField(allow_null=True)


EXAMPLE_BATCH_ID = "0b9f3c52-6a1e-4d7b-8f20-3c4d5e6f7a8b"


def batch_create_examples() -> list[OpenApiExample]:
    return [
        OpenApiExample(
            "Payroll",
            summary="Three salaries in EUR (the MTN sandbox takes only EUR)",
            value={
                "currency": "EUR",
                "reference": "payroll-2026-12",
                "description": "December salaries",
                "items": [
                    {"payee": "256772000001", "amount": "250.00", "reference": "emp-001"},
                    {"payee": "256772000002", "amount": "180.00", "reference": "emp-002"},
                    {
                        "payee": "256772000003",
                        "amount": "95.50",
                        "reference": "emp-003",
                        "description": "December, part time",
                    },
                ],
            },
            request_only=True,
            media_type="application/json",
        ),
        OpenApiExample(
            "Payroll as CSV",
            summary="The same items as text/csv (currency and reference in the query)",
            value=(
                "payee,amount,reference,description\r\n"
                "256772000001,250.00,emp-001,\r\n"
                "256772000002,180.00,emp-002,\r\n"
                '256772000003,95.50,emp-003,"December, part time"\r\n'
            ),
            request_only=True,
            media_type="text/csv",
        ),
    ]


def batch_value(*, completed: bool = False) -> dict[str, Any]:
    return {
        "id": EXAMPLE_BATCH_ID,
        "status": "COMPLETED" if completed else "PROCESSING",
        "currency": "EUR",
        "reference": "payroll-2026-12",
        "description": "December salaries",
        "count": 3,
        "total_amount": "525.50",
        "counts": (
            {"PENDING": 0, "SUCCESSFUL": 2, "FAILED": 1}
            if completed
            else {"PENDING": 3, "SUCCESSFUL": 0, "FAILED": 0}
        ),
        "amount_succeeded": "345.50" if completed else "0.00",
        "created_at": "2026-12-06T18:02:11.514209Z",
        "completed_at": "2026-12-06T18:02:14.902117Z" if completed else None,
    }


def batch_example(*, status_code: str, completed: bool = False) -> OpenApiExample:
    return OpenApiExample(
        "Completed" if completed else "Processing",
        summary="Every payout final" if completed else "Just accepted: every payout PENDING",
        value=batch_value(completed=completed),
        response_only=True,
        status_codes=[status_code],
    )


def batch_list_example() -> OpenApiExample:
    return OpenApiExample(
        "Page",
        summary="One page of batches (the last: next is null)",
        value={"results": [batch_value(completed=True)], "next": None},
        response_only=True,
        status_codes=["200"],
    )


def batch_items_example() -> OpenApiExample:
    item = {**object_value("payout"), "batch": EXAMPLE_BATCH_ID, "status": "SUCCESSFUL"}
    item.update(
        {"amount": "250.00", "payee": "256772000001", "reference": "emp-001", "metadata": {}}
    )
    item["description"] = None
    return OpenApiExample(
        "Page",
        summary="The batch's payouts in the batch's order",
        value={"results": [item], "next": None},
        response_only=True,
        status_codes=["200"],
    )
