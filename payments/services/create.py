"""Creating a payment, payout or refund: stored with its MTN reference, due for submission.

This is the recovery point: from the commit on, the object exists with its MTN reference,
and the dispatcher (``run_worker``) submits it; the same statement or transaction wakes it
(``NOTIFY`` on PostgreSQL). The create answers 201 ``PENDING`` without waiting on MTN. The
idempotency key is inserted in the same transaction, so a request that dies leaves a key that
leads its retry to the object.

With ``Prefer: wait=N`` the request owns the first submission instead (a lease, as the
dispatcher's, taken by the insert itself) and, with one of this process's wait slots free,
makes it through the same job (``transfer_submit_job``), answering with the object as MTN's
first answer left it; without a free slot it hands the row to the dispatcher at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from gateway.audit import Actor, audit_event
from gateway.idempotency import (
    KEY_CONSTRAINT,
    Claim,
    Executed,
    IdempotencyKeyTaken,
    idempotency_link,
    idempotency_new_row,
)
from gateway.money import format_amount
from gateway.prefer import applied_wait_header
from gateway.shares import share_slot
from gateway.sql import dispatcher_wake, insert_together, is_unique_violation
from mtn.calls import PermitTimeout, run_inline
from payments.errors import PaymentNotRefundable, RefundExceedsPayment
from payments.models import MerchantTransfer, MoneyTransfer, Payment, Payout, Refund
from payments.representation import transfer_representation
from payments.routing import transfer_account_route
from payments.services.common import in_request_lease
from payments.services.funds import funds_reserve
from payments.services.submit import transfer_submit_job
from payments.states import Status, Submission

logger = logging.getLogger(__name__)


def transfer_create(
    *,
    model: type[MerchantTransfer],
    tenant: Any,
    actor: Actor,
    amount: Decimal,
    currency: str,
    party: str,
    reference: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_claim: Claim | None = None,
    owned: bool = False,
) -> MoneyTransfer:
    """Store a new ``PENDING`` payment or payout, due for submission now, in one transaction.

    The idempotency claim is linked to it in the same transaction. A payout reserves its
    amount there too; ``InsufficientFunds`` when the tenant's available balance is short,
    and then nothing is written (a payout through the tenant's own MTN account reserves
    nothing). The MTN account that carries it is chosen here, once, and recorded on it.
    ``owned``: the caller submits it itself (``Prefer: wait``); the dispatcher leaves it
    alone for the request's lease, and takes it if the request dies.
    """
    transfer = model(
        tenant=tenant,
        amount=amount,
        currency=currency,
        mtn_account=transfer_account_route(tenant_id=tenant.pk, currency=currency),
        reference=reference,
        description=description,
        metadata=metadata or {},
        next_attempt_at=_first_attempt_at(owned),
        **{model.party_field: party},
        **({"collection_fee_percent": tenant.collection_fee_percent} if model is Payment else {}),
    )
    # A payout sets its amount aside in the transaction that inserts it (InsufficientFunds
    # refuses it, writing nothing); a payment has nothing to decide before it is stored.
    reserve = (lambda: funds_reserve(transfer=transfer)) if model is Payout else None
    _store_new(
        transfer=transfer,
        actor=actor,
        idempotency_claim=idempotency_claim,
        decide=reserve,
        wake=not owned,
    )
    return transfer


def _first_attempt_at(owned: bool) -> Any:
    """Due now for the dispatcher, or after the lease of the request that submits it."""
    now = timezone.now()
    return now + in_request_lease() if owned else now


def refund_create(
    *,
    payment: Payment,
    actor: Actor,
    amount: Decimal | None = None,
    reason: str | None = None,
    idempotency_claim: Claim | None = None,
    owned: bool = False,
) -> Refund:
    """Store a new ``PENDING`` refund of ``payment``, queued for submission, in one transaction.

    Locks the payment's row for the transaction, so that refunds created at the same time
    are decided one after the other: only a ``SUCCESSFUL`` payment is refunded
    (``PaymentNotRefundable``), and its ``PENDING`` and ``SUCCESSFUL`` refunds never add up
    to more than its amount (``RefundExceedsPayment``). ``amount`` None refunds all that is
    left. The amount is reserved from the tenant's balance like a payout's
    (``InsufficientFunds``), unless the payment went through the tenant's own MTN account.
    On a refusal nothing is written (the API stores the 422 under the request's key). It
    goes through the MTN account that took the payment: only that one can give it back.
    ``owned`` as for ``transfer_create``.
    """
    refund = Refund(
        tenant=payment.tenant,
        payment=payment,
        mtn_account=payment.mtn_account,
        payer=payment.payer,
        amount=amount if amount is not None else Decimal(0),
        currency=payment.currency,
        reason=reason,
        next_attempt_at=_first_attempt_at(owned),
    )

    def decide_amount() -> None:
        locked = Payment.objects.select_for_update().only("status", "amount").get(pk=payment.pk)
        if locked.status != Status.SUCCESSFUL:
            raise PaymentNotRefundable(
                f"Only a SUCCESSFUL payment can be refunded; this one is {locked.status}."
            )
        held = Refund.objects.filter(
            payment_id=payment.pk, status__in=(Status.PENDING, Status.SUCCESSFUL)
        ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
        left = locked.amount - held
        if amount is None:
            if left <= 0:
                raise RefundExceedsPayment("Nothing is left to refund of this payment.")
            refund.amount = left
        elif amount > left:
            raise RefundExceedsPayment(
                f"At most {format_amount(max(left, Decimal(0)), payment.currency)} "
                f"{payment.currency} is left to refund of this payment."
            )
        funds_reserve(transfer=refund)

    _store_new(
        transfer=refund,
        actor=actor,
        idempotency_claim=idempotency_claim,
        decide=decide_amount,
        data={"payment": str(payment.pk)},
        wake=not owned,
    )
    return refund


def _store_new(
    *,
    transfer: MoneyTransfer,
    actor: Actor,
    idempotency_claim: Claim | None,
    decide: Callable[[], None] | None = None,
    data: dict[str, Any] | None = None,
    wake: bool = True,
) -> None:
    """Insert the transfer, its ``created`` audit event and the idempotency key together.

    ``decide`` runs first in the same transaction: it may lock rows, settle the amount, or
    raise a ``GatewayError`` to refuse, and then nothing is written. Without it (a payment),
    key, payment and event go in one statement with no transaction around it. ``wake``: the
    same statement wakes the dispatcher (delivered at commit).
    """
    kind = transfer.kind
    key_row = idempotency_new_row(idempotency_claim, resource_type=kind, resource_id=transfer.pk)
    one_statement = idempotency_claim is None or key_row is not None

    def insert() -> None:
        created = audit_event(
            tenant=transfer.tenant,
            object_type=kind,
            object_id=transfer.pk,
            action=f"{kind}.created",
            actor=actor,
            data={
                "amount": str(transfer.amount),
                "currency": transfer.currency,
                "mtn_reference_id": str(transfer.mtn_reference_id),
                **(data or {}),
            },
        )
        if one_statement:
            # The common case: key, transfer and event in one statement, one round trip.
            insert_together(
                [row for row in (key_row, transfer, created) if row is not None],
                wake_dispatcher=wake,
            )
        else:
            # A key re-claimed after a crash, or replacing an expired one.
            idempotency_link(idempotency_claim, resource_type=kind, resource_id=transfer.pk)
            transfer.save(force_insert=True)
            created.save(force_insert=True)
            if wake:
                dispatcher_wake()

    try:
        if decide is None and one_statement:
            insert()
        else:
            # One transaction (the key re-claimed, or ``decide``), so the wake is sent at commit.
            with transaction.atomic():
                if decide is not None:
                    decide()
                insert()
    except IntegrityError as exc:
        if key_row is not None and is_unique_violation(
            exc, constraint=KEY_CONSTRAINT, table="gateway_idempotencykey"
        ):
            raise IdempotencyKeyTaken() from exc
        raise
    if key_row is not None:
        # Only now: a refusal above rolled the key back, and the caller stores its answer.
        idempotency_claim.row = key_row  # type: ignore[union-attr]
    logger.info(
        "%s created: %s %s, %s %s",
        kind,
        transfer.amount,
        transfer.currency,
        transfer.party_field,
        transfer.party,
        extra={
            "event": f"{kind}.created",
            "tenant": transfer.tenant.slug,
            "payment_id": transfer.pk,
        },
    )


# --- Prefer: wait ---------------------------------------------------------------------------


def _answer(transfer: MoneyTransfer, *, waited: int | None) -> Executed:
    """201 with the transfer; after a wait, as MTN's first answer left it, with the header."""
    if waited is None:
        return Executed(201, transfer_representation(transfer))
    return Executed(201, transfer_representation(transfer), headers=applied_wait_header(waited))


def _submit_while_waiting(transfer: MoneyTransfer, wait: int) -> MoneyTransfer:
    """Submit a transfer this request owns, giving up on MTN after ``wait`` seconds.

    The MTN call's timeouts are cut to what is left of the wait: a call that outlives them
    has an unknown outcome, recorded as such (PENDING, sent again under the same reference).
    If the account's limits give no permit in time, the dispatcher takes it over at once.
    """
    deadline = time.monotonic() + wait
    job = transfer_submit_job(transfer=transfer, timeout_cap=max(wait - 0.25, 0.5))
    try:
        return run_inline(job, deadline=deadline)
    except PermitTimeout:
        return _hand_to_dispatcher(transfer)


def _hand_to_dispatcher(transfer: MoneyTransfer) -> MoneyTransfer:
    """A transfer this request owned but will not submit: due for the dispatcher now."""
    now = timezone.now()
    type(transfer)._default_manager.filter(pk=transfer.pk, submission=Submission.QUEUED).update(
        next_attempt_at=now
    )
    dispatcher_wake()
    return type(transfer)._default_manager.select_related("tenant").get(pk=transfer.pk)


def _wait_or_hand_over(transfer: MoneyTransfer, wait: int | None) -> Executed:
    """After the create: with ``wait`` and one of the process's ``PREFER_WAIT_SLOTS`` free,
    submit it here and answer with ``Preference-Applied``; else answer at once.

    The slot is taken only once the row is stored (a request that loses the idempotency
    key's race never holds one); a transfer created for a wait but without a slot is handed
    to the dispatcher (one more statement, for such requests only).
    """
    if not wait:
        return _answer(transfer, waited=None)
    with share_slot("PREFER_WAIT_SLOTS") as free:
        if free:
            return _answer(_submit_while_waiting(transfer, wait), waited=wait)
    return _answer(_hand_to_dispatcher(transfer), waited=None)


def transfer_create_and_submit(
    *,
    model: type[MerchantTransfer],
    tenant: Any,
    actor: Actor,
    validated: dict[str, Any],
    idempotency_claim: Claim,
    wait: int | None = None,
) -> Executed:
    """What ``POST /payments`` (or ``/payouts``) does once the request is valid: store it,
    due now, and answer 201; with ``wait`` (``Prefer: wait``) and a free wait slot, submit it
    first and answer with ``Preference-Applied``."""
    transfer = transfer_create(
        model=model,
        tenant=tenant,
        actor=actor,
        amount=validated["amount"],
        currency=validated["currency"],
        party=validated[model.party_field],
        reference=validated.get("reference"),
        description=validated.get("description"),
        metadata=validated.get("metadata"),
        idempotency_claim=idempotency_claim,
        owned=bool(wait),
    )
    return _wait_or_hand_over(transfer, wait)


def refund_create_and_submit(
    *,
    payment: Payment,
    actor: Actor,
    validated: dict[str, Any],
    idempotency_claim: Claim,
    wait: int | None = None,
) -> Executed:
    """What ``POST /payments/{id}/refunds`` does once the request is valid (as above)."""
    refund = refund_create(
        payment=payment,
        actor=actor,
        amount=validated.get("amount"),
        reason=validated.get("reason"),
        idempotency_claim=idempotency_claim,
        owned=bool(wait),
    )
    return _wait_or_hand_over(refund, wait)
