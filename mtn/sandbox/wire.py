"""MTN's wire shapes shared by every product: replies, error bodies, body checks."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .scenarios import REASON_MESSAGES

APIM_INVALID_KEY = (
    "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription."
)
APIM_MISSING_KEY = (
    "Access denied due to missing subscription key. "
    "Make sure to include subscription key when making requests to an API."
)

_AMOUNT = re.compile(r"^\d+(\.\d+)?$")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_TEXT = 160
_FORBIDDEN_TEXT = re.compile(r"[&'\"<>\\]")
PARTY_ID_TYPES = ("MSISDN", "EMAIL", "PARTY_CODE", "ALIAS")


class Drop(Exception):  # noqa: N818 - control flow, not an error
    """Close the connection without answering (a lost response)."""


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str | None = None) -> Reply:
    """MoMo's own error body ``{code, message}`` (reference section 6.1, shape 1)."""
    return Reply(status, {"code": code, "message": message or REASON_MESSAGES.get(code, code)})


def apim(status: int, message: str) -> Reply:
    """Azure APIM's error body ``{statusCode, message}`` (section 6.1, shape 2)."""
    return Reply(status, {"statusCode": status, "message": message})


def not_found_path() -> Reply:
    return apim(404, "Resource not found")


def bad_request(message: str) -> Reply:
    """A 400. MTN documents the causes of its 400s but not their body; the simulator answers
    MoMo's ``{code, message}`` shape with a code of its own, ``BAD_REQUEST`` (not one of
    MTN's codes: a client must not depend on it)."""
    return error(400, "BAD_REQUEST", message)


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def is_uuid4(value: Any) -> bool:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return parsed.version == 4 and parsed.variant == uuid.RFC_4122


def normalise_amount(amount: str) -> str:
    # MTN echoes amounts normalised: "12.50" comes back as "12.5" (section 4.1).
    try:
        value = Decimal(amount).normalize()
    except InvalidOperation:
        return amount
    return format(value, "f")


def validate_money_and_texts(data: Any) -> str | None:
    """MTN's 400 rules shared by every transaction body (section 4.1); None when valid."""
    if not isinstance(data, dict):
        return "Body must be a JSON object."
    for name in ("amount", "currency", "externalId"):
        if not isinstance(data.get(name), str):
            return f"{name} must be a string."
    if not _AMOUNT.match(data["amount"]) or Decimal(data["amount"]) <= 0:
        return "amount must be a positive decimal string."
    if not _CURRENCY.fullmatch(data["currency"]):
        return "currency must be an ISO 4217 code."
    for name in ("payerMessage", "payeeNote"):
        if name in data:
            value = data[name]
            if not isinstance(value, str):
                return f"{name} must be a string."
            if len(value) > MAX_TEXT:
                return f"{name} is longer than {MAX_TEXT} characters."
            if _FORBIDDEN_TEXT.search(value):
                return f"{name} contains unsupported special characters."
    return None


def party_is_empty(data: dict[str, Any], party_key: str) -> bool:
    """No ``payer``/``payee``, an empty one, or one without a ``partyId``: MTN answers such a
    request 500, not 400 (recorded calls)."""
    party = data.get(party_key)
    if not party:
        return True
    return isinstance(party, dict) and party.get("partyId") in (None, "")


def validate_party(data: dict[str, Any], party_key: str) -> str | None:
    """The ``payer``/``payee`` object of a requesttopay/transfer body; None when valid or
    empty (see :func:`party_is_empty`).

    An MSISDN that is not all digits is not refused here: MTN accepts it (202) and fails it
    later with PAYER_NOT_FOUND (``scenarios.party_not_found``).
    """
    if party_is_empty(data, party_key):
        return None
    party = data.get(party_key)
    if not isinstance(party, dict):
        return f"{party_key} must be an object."
    if party.get("partyIdType") not in PARTY_ID_TYPES:
        return f"{party_key}.partyIdType is invalid."
    if not isinstance(party.get("partyId"), str):
        return f"{party_key}.partyId must be a string."
    return None
