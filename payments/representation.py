"""Payments, payouts and refunds as the API (and merchant webhooks) show them.

Plain functions rather than DRF serializers: this runs on every read and every webhook,
and a dict built directly costs a fraction of a serializer's field machinery.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.models import AuditEvent
from gateway.money import format_amount
from payments.models import MoneyTransfer, Payment, Refund
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
    return shown


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
