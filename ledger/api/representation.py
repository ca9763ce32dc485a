"""Balances and statement rows as the API shows them (plain dicts: cheaper than serializers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.money import format_amount
from ledger.models import LedgerTransaction
from ledger.selectors import Balance

CSV_HEADER = (
    "id",
    "type",
    "currency",
    "amount",
    "fee",
    "net",
    "source_object",
    "source_id",
    "created_at",
)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def balance_representation(balance: Balance) -> dict[str, str]:
    return {
        "currency": balance.currency,
        "available": format_amount(balance.available, balance.currency),
        "reserved": format_amount(balance.reserved, balance.currency),
    }


def transaction_representation(row: LedgerTransaction) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "type": row.type,
        "currency": row.currency,
        "amount": format_amount(row.amount, row.currency),
        "fee": format_amount(row.fee, row.currency),
        "net": format_amount(row.net, row.currency),
        "source": {"object": row.source_object, "id": str(row.source_id)},
        "created_at": iso(row.created_at),
    }


def transaction_csv_row(row: LedgerTransaction) -> tuple[str, ...]:
    return (
        str(row.id),
        row.type,
        row.currency,
        format_amount(row.amount, row.currency),
        format_amount(row.fee, row.currency),
        format_amount(row.net, row.currency),
        row.source_object,
        str(row.source_id),
        iso(row.created_at),
    )
