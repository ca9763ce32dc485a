"""The money rules of payments, payouts and refunds: which ledger posting each step makes.

Every rule of the tenants' money that payments follow is here, called from the services
that create a transfer and from ``transfer_transition``, the one status writer, inside
their transactions, so that a posting and the change that causes it commit together:

- a payout or refund reserves its amount from the tenant's available balance when it is
  created (``InsufficientFunds``, a 422, when the balance is short; nothing is created);
- a payout or refund that ends ``FAILED`` gives its amount back; one that ends
  ``SUCCESSFUL`` settles it (the reserved money left through MTN);
- a payment that ends ``SUCCESSFUL`` credits the tenant with its amount less the tenant's
  collection fee, which goes to the platform. The fee is not given back by a refund.

The ledger posts each (source, type) once, and the status writer changes a status once,
so a callback and a poll that race credit a payment once.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from gateway.money import currency_decimals
from ledger.fees import collection_fee
from ledger.selectors import ledger_has_reservation
from ledger.services import (
    ledger_payment_settled,
    ledger_release,
    ledger_reserve,
    ledger_reserve_batch,
    ledger_settle,
)
from payments.models import MoneyTransfer, Payment, PayoutBatch, Refund
from payments.routing import account_name_is_tenant_owned
from payments.states import Status


def uses_platform_money(transfer: MoneyTransfer) -> bool:
    """Whether the transfer's money passes through the platform's MTN wallets, and so
    through the tenants' balances in the ledger.

    False for one through a tenant's own MTN account: its money goes straight between the
    tenant's wallet and the party, so it touches no balance and is never refused for funds
    (MTN refuses what the tenant's wallet cannot cover). No query for the platform account
    ``default``, nor for an account seen before by this process.
    """
    return not account_name_is_tenant_owned(transfer.mtn_account)


def funds_reserve(*, transfer: MoneyTransfer) -> None:
    """Set a new payout's or refund's amount aside. Raises ``InsufficientFunds``.

    Call it in the transaction that inserts the transfer, before the insert.
    """
    if not uses_platform_money(transfer):
        return
    ledger_reserve(
        tenant_id=transfer.tenant_id,
        currency=transfer.currency,
        amount=transfer.amount,
        source_object=transfer.kind,
        source_id=transfer.pk,
    )


def funds_reserve_batch(*, batch: PayoutBatch) -> None:
    """Set a new payout batch's total aside, in one posting. Raises ``InsufficientFunds``.

    Call it in the transaction that inserts the batch and its items. A batch through the
    tenant's own MTN account reserves nothing. Each item's failure gives back its own
    amount from this reservation (``funds_on_final``), each success settles its own.
    """
    if account_name_is_tenant_owned(batch.mtn_account):
        return
    ledger_reserve_batch(
        tenant_id=batch.tenant_id,
        currency=batch.currency,
        amount=batch.total_amount,
        source_id=batch.pk,
    )


def funds_on_final(*, transfer: MoneyTransfer) -> None:
    """Post what a transfer's final status means for the money. ``transfer`` is the
    locked row, already in its final status; call it in the status writer's transaction."""
    if isinstance(transfer, Refund) and transfer.status == Status.SUCCESSFUL:
        # The payment shows what was refunded without summing its refunds on every read.
        # Its row is locked before any ledger account, in the same order as refund_create
        # (payment, then accounts), so that the two cannot deadlock.
        Payment.objects.filter(pk=transfer.payment_id).update(
            amount_refunded=F("amount_refunded") + transfer.amount, updated_at=timezone.now()
        )
    if not uses_platform_money(transfer):
        return
    if isinstance(transfer, Payment):
        if transfer.status == Status.SUCCESSFUL:
            ledger_payment_settled(
                tenant_id=transfer.tenant_id,
                currency=transfer.currency,
                amount=transfer.amount,
                fee=collection_fee(
                    amount=transfer.amount,
                    percent=transfer.tenant.collection_fee_percent,
                    decimals=currency_decimals(transfer.currency),
                ),
                source_id=transfer.pk,
            )
        return
    in_batch = getattr(transfer, "batch_id", None) is not None
    # A batch's item was reserved with its batch, in the transaction that created both.
    if not in_batch and not ledger_has_reservation(
        source_object=transfer.kind, source_id=transfer.pk
    ):
        # Created before the ledger existed: it reserved nothing, so there is nothing to
        # give back or settle (the money left the platform's wallet as it always did).
        return
    post = ledger_settle if transfer.status == Status.SUCCESSFUL else ledger_release
    post(
        tenant_id=transfer.tenant_id,
        currency=transfer.currency,
        amount=transfer.amount,
        source_object=transfer.kind,
        source_id=transfer.pk,
    )
