"""Reads from the ledger: a tenant's balances and statement, and the ledger's self-check.

Balances come from the account rows (one indexed read), never from summing entries on a
request path; ``ledger_verify`` is the off-path proof that the two agree.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.errors import ValidationFailed
from ledger.models import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    NON_NEGATIVE_KINDS,
    STATEMENT_TYPES,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_ZERO = Decimal(0)
_CENT = Decimal(1).scaleb(-AMOUNT_DECIMALS)


@dataclass(frozen=True)
class Balance:
    currency: str
    available: Decimal
    reserved: Decimal


@dataclass(frozen=True)
class TransactionPage:
    results: list[LedgerTransaction]
    next_cursor: str | None


def balance_list(*, tenant_id: uuid.UUID) -> list[Balance]:
    """One entry per currency the tenant has ever held, by currency code; one query."""
    return balance_lists(tenant_ids=[tenant_id]).get(tenant_id, [])


def balance_lists(*, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Balance]]:
    """``balance_list`` of each of several tenants (a page of the admin's list); one query.
    A tenant that never held money has no entry."""
    found: dict[uuid.UUID, dict[str, dict[str, Decimal]]] = {}
    rows = LedgerAccount.objects.filter(
        tenant_id__in=tenant_ids, kind__in=[AccountKind.AVAILABLE, AccountKind.RESERVED]
    ).values_list("tenant_id", "currency", "kind", "balance")
    for tenant_id, currency, kind, balance in rows:
        assert tenant_id is not None  # noqa: S101 - filtered on tenant_id above
        found.setdefault(tenant_id, {}).setdefault(currency, {})[kind] = balance
    return {
        tenant_id: [
            Balance(
                currency=currency,
                available=kinds.get(AccountKind.AVAILABLE, _ZERO),
                reserved=kinds.get(AccountKind.RESERVED, _ZERO),
            )
            for currency, kinds in sorted(balances.items())
        ]
        for tenant_id, balances in found.items()
    }


def balance_get(*, tenant_id: uuid.UUID, currency: str) -> Balance:
    """The tenant's balance in one currency (zeros when it never held any)."""
    for balance in balance_list(tenant_id=tenant_id):
        if balance.currency == currency:
            return balance
    return Balance(currency=currency, available=_ZERO, reserved=_ZERO)


def ledger_has_reservation(*, source_object: str, source_id: uuid.UUID) -> bool:
    """Whether a payout or refund reserved its amount (its ``payout``/``refund`` transaction
    exists). Objects created before the ledger existed never did: releasing or settling
    them would raise ``LedgerInvariantError``, so their callers skip the ledger."""
    return LedgerTransaction.objects.filter(
        source_object=source_object, source_id=source_id, type=source_object
    ).exists()


def balance_transaction_list(
    *,
    tenant_id: uuid.UUID,
    currency: str | None = None,
    type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int | None = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> TransactionPage:
    """The tenant's statement, newest first, keyset-paginated on (created_at, id).

    Only the six statement types (the ones that move ``available``) are listed.
    ``created_after`` is inclusive, ``created_before`` exclusive. ``limit=None`` returns
    every matching row (the CSV export). A cursor this API did not issue raises
    ``ValidationFailed``.
    """
    queryset = _statement(
        tenant_id=tenant_id,
        currency=currency,
        type=type,
        created_after=created_after,
        created_before=created_before,
    )
    if cursor is not None:
        position = decode_cursor(cursor)
        if position is None:
            raise ValidationFailed(
                "A query parameter is not valid.", fields={"cursor": ["Is not a cursor."]}
            )
        at, last_id = position
        queryset = queryset.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=last_id))
    if limit is None:
        return TransactionPage(results=list(queryset), next_cursor=None)
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return TransactionPage(
        results=rows, next_cursor=encode_cursor(rows[-1]) if has_more and rows else None
    )


def balance_transaction_iter(
    *,
    tenant_id: uuid.UUID,
    currency: str | None = None,
    type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Iterator[LedgerTransaction]:
    """Every matching statement row, newest first, read in chunks (for the CSV export)."""
    return _statement(
        tenant_id=tenant_id,
        currency=currency,
        type=type,
        created_after=created_after,
        created_before=created_before,
    ).iterator(chunk_size=2000)


def _statement(
    *,
    tenant_id: uuid.UUID,
    currency: str | None,
    type: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> QuerySet[LedgerTransaction]:
    queryset = LedgerTransaction.objects.filter(tenant_id=tenant_id, type__in=STATEMENT_TYPES)
    if currency is not None:
        queryset = queryset.filter(currency=currency)
    if type is not None:
        queryset = queryset.filter(type=type)
    if created_after is not None:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    return queryset.order_by("-created_at", "-pk")


def encode_cursor(row: LedgerTransaction) -> str:
    raw = f"{row.created_at.isoformat()}|{row.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        moment_text, id_text = text.split("|", 1)
        moment = parse_datetime(moment_text)
        if moment is None or timezone.is_naive(moment):
            return None
        return moment.astimezone(UTC), uuid.UUID(id_text)
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        return None


# --- the ledger's self-check -----------------------------------------------------------------


def _money(value: Any) -> Decimal:
    """A summed amount as exact money (SQLite sums decimals as floats)."""
    return Decimal(str(value if value is not None else 0)).quantize(_CENT)


def _sum(expression: Any, **extra: Any) -> Coalesce:
    output: DecimalField[Decimal, Decimal] = DecimalField(
        max_digits=AMOUNT_DIGITS + 6, decimal_places=AMOUNT_DECIMALS
    )
    return Coalesce(Sum(expression, **extra), Value(_ZERO), output_field=output)


def _in_database(queryset: QuerySet[Any], condition: Q) -> QuerySet[Any]:
    """Filter in PostgreSQL (exact numerics); SQLite's float sums are compared in Python."""
    return queryset.filter(condition) if connection.vendor == "postgresql" else queryset


def ledger_verify() -> list[str]:
    """Every problem the ledger has; an empty list proves it consistent.

    Checks: each account's balance equals the sum of its entries; no account that must not
    go negative is negative; each transaction has entries, they sum to zero per currency,
    they are in the transaction's currency, touch no other tenant's accounts, and the
    entries on the tenant's available account add up to the transaction's ``net``.
    Aggregate queries over the whole ledger: for the check command and tests, never a
    request path.
    """
    problems: list[str] = []

    accounts = LedgerAccount.objects.annotate(total=_sum("entries__amount"))
    for account in _in_database(accounts, ~Q(balance=F("total"))).order_by("pk"):
        total = _money(account.total)
        if _money(account.balance) != total:
            problems.append(
                f"account {account.pk} ({account}): balance {account.balance} "
                f"!= sum of entries {total}"
            )

    negative = LedgerAccount.objects.filter(kind__in=NON_NEGATIVE_KINDS, balance__lt=0)
    for account in negative.order_by("pk"):
        problems.append(f"account {account.pk} ({account}): negative balance {account.balance}")

    empty = LedgerTransaction.objects.filter(entries__isnull=True).order_by("created_at", "pk")
    for posted in empty:
        problems.append(f"transaction {posted.pk} ({posted.type}): has no entries")

    per_currency = LedgerEntry.objects.values("transaction_id", "account__currency").annotate(
        total=_sum("amount")
    )
    for row in _in_database(per_currency, ~Q(total=0)).order_by("transaction_id"):
        if _money(row["total"]) != 0:
            problems.append(
                f"transaction {row['transaction_id']}: entries in {row['account__currency']} "
                f"sum to {_money(row['total'])}, not zero"
            )

    foreign = LedgerEntry.objects.filter(
        ~Q(account__currency=F("transaction__currency"))
        | (Q(account__tenant_id__isnull=False) & ~Q(account__tenant_id=F("transaction__tenant_id")))
    ).order_by("pk")
    for entry in foreign.values("pk", "transaction_id", "account_id"):
        problems.append(
            f"entry {entry['pk']} of transaction {entry['transaction_id']}: account "
            f"{entry['account_id']} has another currency or tenant"
        )

    nets = LedgerTransaction.objects.annotate(
        available=_sum("entries__amount", filter=Q(entries__account__kind=AccountKind.AVAILABLE))
    )
    for posted in _in_database(nets, ~Q(net=F("available"))).order_by("created_at", "pk"):
        available = _money(posted.available)
        if _money(posted.net) != available:
            problems.append(
                f"transaction {posted.pk} ({posted.type}): net {posted.net} but its entries "
                f"change available by {available}"
            )
    return problems
