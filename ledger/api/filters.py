"""The statement's query parameters, read strictly: anything malformed is a 400."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.currencies import SUPPORTED_CURRENCIES
from gateway.errors import ValidationFailed
from ledger.models import STATEMENT_TYPES
from ledger.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor

STATEMENT_PARAMETERS = frozenset(
    {"currency", "type", "created_after", "created_before", "limit", "cursor", "format"}
)
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class StatementFilters:
    currency: str | None = None
    type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    format: str = "json"


def parse_statement_filters(params: Any) -> StatementFilters:
    """Read the statement's filters; a malformed one is a 400 ``validation_error``.

    Unknown parameters are refused before this, by the view (``gateway.query``).
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    currency = params.get("currency")
    if currency is not None:
        if currency not in SUPPORTED_CURRENCIES:
            errors["currency"] = [f"Must be one of {', '.join(SUPPORTED_CURRENCIES)}."]
        values["currency"] = currency
    kind = params.get("type")
    if kind is not None:
        if kind not in STATEMENT_TYPES:
            errors["type"] = [f"Must be one of {', '.join(STATEMENT_TYPES)}."]
        values["type"] = kind
    for name in ("created_after", "created_before"):
        raw = params.get(name)
        if raw is None:
            continue
        moment = _parse_timestamp(raw)
        if moment is None:
            errors[name] = ["Must be an ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z."]
        values[name] = moment
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if (
            not raw_limit.isascii()
            or not raw_limit.isdigit()
            or len(raw_limit) > 10  # int() of thousands of digits raises ValueError
            or not (1 <= int(raw_limit) <= MAX_PAGE_SIZE)
        ):
            errors["limit"] = [f"Must be a whole number from 1 to {MAX_PAGE_SIZE}."]
        else:
            values["limit"] = int(raw_limit)
    cursor = params.get("cursor")
    if cursor is not None:
        if decode_cursor(cursor) is None:
            errors["cursor"] = ["Is not a cursor this API issued."]
        values["cursor"] = cursor
    output = params.get("format")
    if output is not None:
        if output not in FORMATS:
            errors["format"] = ["Must be json or csv."]
        values["format"] = output
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return StatementFilters(**values)


def _parse_timestamp(raw: str) -> datetime | None:
    # A "+" in a query string arrives as a space: "...T12:00:00 02:00" means "+02:00".
    text = raw.replace(" ", "+") if raw.count(" ") == 1 else raw
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. year 1 at +14:00 is before year 1 in UTC
        return None
