"""The money rules of payments, payouts and refunds: which ledger posting each step makes.

Every rule of the tenants' money that payments follow is here, called from the services
that create a transfer and from ``transfer_transition``, the one status writer, inside
their transactions, so that a posting and the change that causes it commit together:

- a payout or refund reserves its amount from the tenant's available balance when it is
  created (``InsufficientFunds``, a 422, when the balance is short; nothing is created);
- a payout or refund that ends ``FAILED`` gives its amount back; one that ends
  ``SUCCESSFUL`` settles it (the reserved money left through MTN);
- a payment that ends ``SUCCESSFUL`` credits the tenant with its amount less the
  collection fee at the percent captured when the payment was created, which goes to the
  platform. The fee is not given back by a refund;
- a refund of a payment that is, or has a refund that is, flagged for review is refused
  (``PaymentUnderReview``) before anything is set aside;
- a person's acceptance of MTN's final status over ours posts one ``correction``: the
  difference between what the old status posted and what MTN's would have
  (``funds_correct``).

The ledger posts each (source, type) once, and the status writer changes a status once,
so a callback and a poll that race credit a payment once.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db.models import F, Q
from django.utils import timezone

from gateway.money import currency_decimals
from ledger.fees import collection_fee
from ledger.models import AccountKind
from ledger.selectors import ledger_has_reservation
from ledger.services import (
    ledger_correction,
    ledger_payment_settled,
    ledger_release,
    ledger_reserve,
    ledger_reserve_batch,
    ledger_settle,
)
from payments.errors import PaymentUnderReview
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

    Call it in the transaction that inserts the transfer, before the insert. A refund of a
    payment under review raises ``PaymentUnderReview`` (its caller holds the payment's lock).
    """
    if isinstance(transfer, Refund):
        refund_guard_review(payment_id=transfer.payment_id)
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


def refund_guard_review(*, payment_id: uuid.UUID) -> None:
    """Refuse a new refund while MTN's word about the payment or one of its refunds is in
    doubt: another could give back money that MTN never took, or refund it twice."""
    # One query: the payment's own flag, or any of its refunds' (the partial index on
    # needs_review holds only flagged rows).
    flagged = Payment.objects.filter(
        Q(needs_review=True) | Q(refunds__needs_review=True), pk=payment_id
    ).exists()
    if flagged:
        raise PaymentUnderReview(
            "This payment, or one of its refunds, is flagged for review because MTN's record "
            "differs from ours; it cannot be refunded until staff resolve it."
        )


def payment_fee(payment: Payment) -> Decimal:
    """The collection fee of ``payment`` at the percent captured when it was created."""
    percent = payment.collection_fee_percent
    if percent is None:
        percent = payment.tenant.collection_fee_percent
    return collection_fee(
        amount=payment.amount, percent=percent, decimals=currency_decimals(payment.currency)
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
                fee=payment_fee(transfer),
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


def _posted_legs(transfer: MoneyTransfer, status: str) -> dict[AccountKind, Decimal]:
    """What ``funds_on_final`` (and a payout's or refund's reservation) posted, in all, for
    ``transfer`` ending in ``status``: each account kind and the amount added to it."""
    amount = transfer.amount
    if isinstance(transfer, Payment):
        if status != Status.SUCCESSFUL:
            return {}
        fee = payment_fee(transfer)
        return {
            AccountKind.MTN_COLLECTION: -amount,
            AccountKind.AVAILABLE: amount - fee,
            AccountKind.FEES: fee,
        }
    # Reserved at creation (available -> reserved), then settled or released.
    if status == Status.SUCCESSFUL:
        return {AccountKind.AVAILABLE: -amount, AccountKind.MTN_DISBURSEMENT: amount}
    return {}


def funds_correct(*, transfer: MoneyTransfer, previous: str, reason: str) -> None:
    """Post the ``correction`` that makes the money what it would be had ``transfer`` (the
    locked row, now in MTN's final status) ended so in the first place instead of
    ``previous``: one balanced transaction, the difference of the two postings.

    A refund also moves its payment's ``amount_refunded``. Raises ``InsufficientFunds`` when
    the tenant's available balance cannot give back what the correction takes; then nothing
    is written (the caller's transaction rolls back).
    """
    if isinstance(transfer, Refund):
        sign = 1 if transfer.status == Status.SUCCESSFUL else -1
        Payment.objects.filter(pk=transfer.payment_id).update(
            amount_refunded=F("amount_refunded") + sign * transfer.amount,
            updated_at=timezone.now(),
        )
    if not uses_platform_money(transfer):
        return
    if not isinstance(transfer, Payment) and not ledger_has_reservation(
        source_object=transfer.kind, source_id=transfer.pk
    ):
        return  # created before the ledger existed: it never touched a balance
    before = _posted_legs(transfer, previous)
    after = _posted_legs(transfer, transfer.status)
    changes = {
        kind: after.get(kind, Decimal(0)) - before.get(kind, Decimal(0))
        for kind in (*before, *after)
    }
    if not any(changes.values()):
        return
    ledger_correction(
        tenant_id=transfer.tenant_id,
        currency=transfer.currency,
        source_object=transfer.kind,
        source_id=transfer.pk,
        changes=changes,
        fee=changes.get(AccountKind.FEES, Decimal(0)),
        reason=reason,
    )
