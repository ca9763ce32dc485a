"""Reads for payments and payouts, always scoped to a tenant.

Another tenant's object is simply not found: there is no way to fetch a tenant-owned row
without naming the tenant.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.errors import NotFound, ValidationFailed
from gateway.models import AuditEvent
from gateway.sql import ModelColumns, fetch_rows
from payments.models import MoneyTransfer
from payments.states import Status

_MSISDN_RE = re.compile(r"\+?([0-9]{9,15})", re.ASCII)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


_COLUMNS: dict[type[MoneyTransfer], ModelColumns] = {}


def _columns(model: type[MoneyTransfer]) -> ModelColumns:
    columns = _COLUMNS.get(model)
    if columns is None:
        columns = _COLUMNS[model] = ModelColumns(model, "p")
    return columns


def transfer_get(*, model: type[MoneyTransfer], tenant: Any, transfer_id: Any) -> MoneyTransfer:
    """The tenant's payment (or payout) by id; ``NotFound`` for anyone else's or none.

    Hand-written SQL (gateway.sql): retrieving a payment is the API's most frequent call.
    """
    try:
        parsed = uuid.UUID(str(transfer_id))
    except ValueError as exc:
        raise NotFound() from exc
    columns = _columns(model)
    rows = fetch_rows(
        f"SELECT {columns.select} FROM {columns.table} "  # noqa: S608 - column names only
        "WHERE p.id = %s AND p.tenant_id = %s",
        [columns.param("id", parsed), columns.param("tenant", tenant.pk)],
    )
    if not rows:
        raise NotFound()
    transfer = columns.build(rows[0])
    transfer.tenant = tenant
    return transfer


@dataclass(frozen=True)
class ListFilters:
    status: str | None = None
    reference: str | None = None
    party: str | None = None  # the payer (payments) or payee (payouts), digits only
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: tuple[datetime, uuid.UUID] | None = None


@dataclass(frozen=True)
class Page:
    results: list[MoneyTransfer]
    next_cursor: str | None


def parse_list_filters(params: Any, *, party_field: str | None = None) -> ListFilters:
    """Read the list's query parameters; a malformed one is a 400 ``validation_error``.

    ``party_field`` (``payer`` or ``payee``) names the party filter, if the list has one.
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    party = params.get(party_field) if party_field else None
    if party is not None:
        # As on create: a leading + is dropped, so "+256..." finds what "256..." stored. An
        # unencoded "+" in a URL arrives as a space: read it as the "+" that was meant.
        match = _MSISDN_RE.fullmatch("+" + party[1:] if party.startswith(" ") else party)
        if match is None:
            errors[str(party_field)] = ["Must be an MSISDN: 9 to 15 digits, an optional leading +."]
        else:
            values["party"] = match.group(1)
    status = params.get("status")
    if status is not None:
        if status not in Status.values:
            errors["status"] = [f"Must be one of {', '.join(Status.values)}."]
        values["status"] = status
    reference = params.get("reference")
    if reference is not None:
        if len(reference) > 64 or "\x00" in reference:
            errors["reference"] = ["Must be at most 64 characters."]
        values["reference"] = reference
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
            or len(raw_limit) > 10  # int() refuses over 4300 digits with a ValueError (a 500)
            or not (1 <= int(raw_limit) <= MAX_PAGE_SIZE)
        ):
            errors["limit"] = [f"Must be a whole number from 1 to {MAX_PAGE_SIZE}."]
        else:
            values["limit"] = int(raw_limit)
    raw_cursor = params.get("cursor")
    if raw_cursor is not None:
        cursor = decode_cursor(raw_cursor)
        if cursor is None:
            errors["cursor"] = ["Is not a cursor this API issued."]
        values["cursor"] = cursor
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return ListFilters(**values)


def _parse_timestamp(raw: str) -> datetime | None:
    try:
        moment = parse_datetime(raw.replace(" ", "+") if raw.count(" ") == 1 else raw)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime | None:
    """The instant in UTC, or None when it lies outside what a datetime can hold.

    ``0001-01-01T00:00:00+14:00`` parses, but is before year 1 in UTC: the query would
    raise ``OverflowError`` (a 500) instead of the 400 a malformed filter deserves.
    """
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def encode_cursor(transfer: MoneyTransfer) -> str:
    raw = f"{transfer.created_at.isoformat()}|{transfer.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        moment_text, id_text = text.split("|", 1)
        moment = parse_datetime(moment_text)
        if moment is None or timezone.is_naive(moment):
            return None
        moment = _as_utc(moment)
        if moment is None:
            return None
        return moment, uuid.UUID(id_text)
    except (ValueError, UnicodeError, binascii.Error):
        return None


def transfer_list(*, model: type[MoneyTransfer], tenant: Any, filters: ListFilters) -> Page:
    """Newest first, keyset-paginated on (created_at, id) so deep pages stay cheap."""
    queryset: QuerySet[MoneyTransfer] = model.objects.filter(tenant=tenant)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.reference is not None:
        queryset = queryset.filter(reference=filters.reference)
    if filters.party is not None:
        queryset = queryset.filter(**{model.party_field: filters.party})
    if filters.created_after:
        queryset = queryset.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        queryset = queryset.filter(created_at__lt=filters.created_before)
    if filters.cursor:
        created_at, last_id = filters.cursor
        queryset = queryset.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=last_id)
        )
    rows = list(queryset.order_by("-created_at", "-pk")[: filters.limit + 1])
    has_more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return Page(results=rows, next_cursor=encode_cursor(rows[-1]) if has_more and rows else None)


def transfer_events(*, transfer: MoneyTransfer) -> list[AuditEvent]:
    """The audit trail of one payment or payout, oldest first."""
    return list(
        AuditEvent.objects.filter(object_type=transfer.kind, object_id=str(transfer.pk)).order_by(
            "created_at", "id"
        )
    )
