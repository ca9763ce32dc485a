"""The statement's query parameters, read strictly: anything malformed is a 400."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.errors import ValidationFailed
from gateway.list_filters import read_limit, read_time_range
from gateway.money import SUPPORTED_CURRENCIES
from ledger.models import STATEMENT_TYPES
from ledger.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, decode_cursor

STATEMENT_PARAMETERS = frozenset(
    {"currency", "type", "created_after", "created_before", "limit", "cursor", "format"}
)
# The CSV path takes the filters only: it is never paginated and always CSV.
CSV_PARAMETERS = frozenset({"currency", "type", "created_after", "created_before"})
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
    read_time_range(params, errors=errors, values=values)
    read_limit(params, maximum=MAX_PAGE_SIZE, errors=errors, values=values)
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
