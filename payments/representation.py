"""Payments, payouts and refunds as the API (and merchant webhooks) show them.

Plain functions rather than DRF serializers: this runs on every read and every webhook,
and a dict built directly costs a fraction of a serializer's field machinery.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from gateway.models import AuditEvent
from gateway.money import format_amount
from payments.models import MoneyTransfer, Payment, Payout, PayoutBatch, Refund
from payments.reasons import transfer_failure_reason


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def transfer_representation(transfer: MoneyTransfer) -> dict[str, Any]:
    if isinstance(transfer, Refund):
        return refund_representation(transfer)
    shown = {
        "id": str(transfer.id),
        "status": transfer.status,
        "amount": format_amount(transfer.amount, transfer.currency),
        "currency": transfer.currency,
        transfer.party_field: transfer.party,
        "reference": transfer.reference,
        "description": transfer.description,
        "metadata": transfer.metadata,
        "account": transfer.mtn_account,
        "failure_reason": transfer_failure_reason(transfer),
        "created_at": iso(transfer.created_at),
        "updated_at": iso(transfer.updated_at),
    }
    if isinstance(transfer, Payment):
        shown["amount_refunded"] = format_amount(transfer.amount_refunded, transfer.currency)
    elif isinstance(transfer, Payout):
        shown["batch"] = str(transfer.batch_id) if transfer.batch_id else None
    return shown


def batch_representation(batch: PayoutBatch) -> dict[str, Any]:
    currency = batch.currency
    return {
        "id": str(batch.id),
        "status": batch.status,
        "currency": currency,
        "reference": batch.reference,
        "description": batch.description,
        "count": batch.count,
        "total_amount": format_amount(batch.total_amount, currency),
        "counts": {
            "PENDING": batch.pending_count,
            "SUCCESSFUL": batch.successful_count,
            "FAILED": batch.failed_count,
        },
        "amount_succeeded": format_amount(batch.amount_succeeded, currency),
        "created_at": iso(batch.created_at),
        "completed_at": iso(batch.completed_at) if batch.completed_at else None,
    }


def refund_representation(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "payment": str(refund.payment_id),
        "status": refund.status,
        "amount": format_amount(refund.amount, refund.currency),
        "currency": refund.currency,
        "reason": refund.reason,
        "account": refund.mtn_account,
        "failure_reason": transfer_failure_reason(refund),
        "created_at": iso(refund.created_at),
        "updated_at": iso(refund.updated_at),
    }


def event_representation(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": iso(event.created_at),
        "action": event.action,
        "actor": event.actor,
        "data": event.data,
    }


# The batch report: ``GET /payout_batches/{id}/payouts?format=csv`` and the admin's download.
ITEMS_CSV_HEADER = (
    "id",
    "payee",
    "amount",
    "currency",
    "reference",
    "status",
    "failure_code",
    "failure_message",
    "updated_at",
)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def item_csv_row(payout: Payout) -> tuple[str, ...]:
    reason = transfer_failure_reason(payout) or {}
    return (
        str(payout.pk),
        payout.payee,
        format_amount(payout.amount, payout.currency),
        payout.currency,
        payout.reference or "",
        payout.status,
        reason.get("code") or "",
        reason.get("message") or "",
        iso(payout.updated_at),
    )


def items_csv_lines(rows: Iterator[Payout]) -> Iterator[str]:
    """The header, then one CSV line per payout, each as it is produced (streamed)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(ITEMS_CSV_HEADER)
    for payout in rows:
        yield writer.writerow(item_csv_row(payout))
