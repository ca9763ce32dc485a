"""Reads for payments, payouts and refunds, always scoped to a tenant.

Another tenant's object is simply not found: there is no way to fetch a tenant-owned row
without naming the tenant.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.errors import NotFound, ValidationFailed
from gateway.list_filters import as_utc, read_limit, read_time_range
from gateway.models import AuditEvent
from gateway.sql import ModelColumns, fetch_rows
from payments.models import MoneyTransfer, Payout, PayoutBatch, Refund
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
    read_time_range(params, errors=errors, values=values)
    read_limit(params, maximum=MAX_PAGE_SIZE, errors=errors, values=values)
    raw_cursor = params.get("cursor")
    if raw_cursor is not None:
        cursor = decode_cursor(raw_cursor)
        if cursor is None:
            errors["cursor"] = ["Is not a cursor this API issued."]
        values["cursor"] = cursor
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return ListFilters(**values)


def _newest_first_page(
    queryset: QuerySet[Any], *, cursor: tuple[datetime, uuid.UUID] | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of ``queryset``, newest first, after ``cursor`` (keyset on created_at and id,
    so a page costs the same however deep): its rows and the next page's cursor, if any."""
    if cursor:
        created_at, last_id = cursor
        queryset = queryset.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=last_id)
        )
    rows = list(queryset.order_by("-created_at", "-pk")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if has_more and rows else None


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
        moment = as_utc(moment)
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
    rows, next_cursor = _newest_first_page(queryset, cursor=filters.cursor, limit=filters.limit)
    return Page(results=rows, next_cursor=next_cursor)


def transfer_events(*, transfer: MoneyTransfer) -> list[AuditEvent]:
    """The audit trail of one payment or payout, oldest first."""
    return list(
        AuditEvent.objects.filter(object_type=transfer.kind, object_id=str(transfer.pk)).order_by(
            "created_at", "id"
        )
    )


# Any other query parameter is refused by the view (gateway.query).
REFUND_LIST_PARAMETERS = ("payment", "status", "limit", "cursor")


@dataclass(frozen=True)
class RefundFilters:
    payment: uuid.UUID | None = None
    status: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: tuple[datetime, uuid.UUID] | None = None


def parse_refund_filters(params: Any) -> RefundFilters:
    """Read ``GET /refunds``' query parameters; a malformed one is a 400."""
    errors: dict[str, list[str]] = {}
    payment = None
    raw_payment = params.get("payment")
    if raw_payment is not None:
        try:
            payment = uuid.UUID(raw_payment)
        except ValueError:
            errors["payment"] = ["Must be a payment id."]
    # status, limit and cursor follow the payments list's rules.
    shared = {name: params[name] for name in ("status", "limit", "cursor") if name in params}
    common = ListFilters()
    try:
        common = parse_list_filters(shared)
    except ValidationFailed as exc:
        errors.update(exc.fields or {})
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return RefundFilters(
        payment=payment, status=common.status, limit=common.limit, cursor=common.cursor
    )


def refund_list(*, tenant: Any, filters: RefundFilters) -> Page:
    """The tenant's refunds, newest first, keyset-paginated like payments."""
    queryset: QuerySet[Refund] = Refund.objects.filter(tenant=tenant)
    if filters.payment is not None:
        queryset = queryset.filter(payment_id=filters.payment)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    rows, next_cursor = _newest_first_page(queryset, cursor=filters.cursor, limit=filters.limit)
    return Page(results=rows, next_cursor=next_cursor)


# --- payout batches ------------------------------------------------------------------------

BATCH_LIST_PARAMETERS = ("status", "reference", "limit", "cursor")
BATCH_ITEM_PARAMETERS = ("status", "limit", "cursor", "format")


def payout_batch_get(*, tenant: Any, batch_id: Any) -> PayoutBatch:
    """The tenant's payout batch by id; ``NotFound`` for anyone else's or none."""
    try:
        parsed = uuid.UUID(str(batch_id))
    except ValueError as exc:
        raise NotFound() from exc
    batch = PayoutBatch.objects.filter(tenant=tenant, pk=parsed).first()
    if batch is None:
        raise NotFound()
    batch.tenant = tenant
    return batch


@dataclass(frozen=True)
class BatchListFilters:
    status: str | None = None
    reference: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    cursor: tuple[datetime, uuid.UUID] | None = None


def parse_batch_filters(params: Any) -> BatchListFilters:
    """``GET /payout_batches``' query parameters; a malformed one is a 400."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    status = params.get("status")
    if status is not None:
        if status not in PayoutBatch.State.values:
            errors["status"] = [f"Must be one of {', '.join(PayoutBatch.State.values)}."]
        values["status"] = status
    # reference, limit and cursor follow the payments list's rules.
    shared = {name: params[name] for name in ("reference", "limit", "cursor") if name in params}
    try:
        common = parse_list_filters(shared)
    except ValidationFailed as exc:
        errors.update(exc.fields or {})
        common = ListFilters()
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return BatchListFilters(
        status=values.get("status"),
        reference=common.reference,
        limit=common.limit,
        cursor=common.cursor,
    )


@dataclass(frozen=True)
class BatchPage:
    results: list[PayoutBatch]
    next_cursor: str | None


def payout_batch_list(*, tenant: Any, filters: BatchListFilters) -> BatchPage:
    """The tenant's payout batches, newest first, keyset-paginated like payments."""
    queryset: QuerySet[PayoutBatch] = PayoutBatch.objects.filter(tenant=tenant)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.reference is not None:
        queryset = queryset.filter(reference=filters.reference)
    rows, next_cursor = _newest_first_page(queryset, cursor=filters.cursor, limit=filters.limit)
    for row in rows:
        row.tenant = tenant
    return BatchPage(results=rows, next_cursor=next_cursor)


@dataclass(frozen=True)
class BatchItemFilters:
    status: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    after: int | None = None  # the batch_index of the previous page's last item
    format: str = "json"


def parse_batch_item_filters(params: Any) -> BatchItemFilters:
    """``GET /payout_batches/{id}/payouts``' query parameters; a malformed one is a 400."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    status = params.get("status")
    if status is not None:
        if status not in Status.values:
            errors["status"] = [f"Must be one of {', '.join(Status.values)}."]
        values["status"] = status
    read_limit(params, maximum=MAX_PAGE_SIZE, errors=errors, values=values)
    raw_cursor = params.get("cursor")
    if raw_cursor is not None:
        after = _decode_position(raw_cursor)
        if after is None:
            errors["cursor"] = ["Is not a cursor this API issued."]
        values["after"] = after
    output = params.get("format")
    if output is not None:
        if output not in ("json", "csv"):
            errors["format"] = ["Must be json or csv."]
        values["format"] = output
    if errors:
        raise ValidationFailed("A query parameter is not valid.", fields=errors)
    return BatchItemFilters(**values)


def _encode_position(index: int) -> str:
    return base64.urlsafe_b64encode(f"item|{index}".encode()).decode("ascii").rstrip("=")


def _decode_position(raw: str) -> int | None:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        tag, number = text.split("|", 1)
        if tag != "item" or not number.isascii() or not number.isdigit() or len(number) > 9:
            return None
        return int(number)
    except (ValueError, UnicodeError, binascii.Error):
        return None


def _batch_items(*, batch: PayoutBatch, status: str | None) -> QuerySet[Payout]:
    queryset: QuerySet[Payout] = Payout.objects.filter(batch=batch, tenant_id=batch.tenant_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("batch_index")


@dataclass(frozen=True)
class BatchItemPage:
    results: list[Payout]
    next_cursor: str | None


def payout_batch_items(*, batch: PayoutBatch, filters: BatchItemFilters) -> BatchItemPage:
    """A page of the batch's payouts, in the batch's order (``payout_batch_items`` index)."""
    queryset = _batch_items(batch=batch, status=filters.status)
    if filters.after is not None:
        queryset = queryset.filter(batch_index__gt=filters.after)
    rows = list(queryset[: filters.limit + 1])
    has_more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    for row in rows:
        row.tenant = batch.tenant
    last = rows[-1].batch_index if has_more and rows else None
    return BatchItemPage(
        results=rows, next_cursor=_encode_position(last) if last is not None else None
    )


def payout_batch_items_iter(*, batch: PayoutBatch, status: str | None = None) -> Iterator[Payout]:
    """Every payout of the batch in its order, read in chunks (the CSV report)."""
    return _batch_items(batch=batch, status=status).iterator(chunk_size=1000)
