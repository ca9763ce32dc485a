"""Payout batches: many payouts created in one request, reserved at once, tracked together.

- ``payout_batch_create`` stores the batch, reserves its total in one ledger posting, and
  inserts its items as ordinary ``PENDING`` payouts due for submission now (each with its
  own MTN reference and callback token), all in one transaction with the idempotency key.
  The dispatcher in ``run_worker`` submits them within each MTN account's limits, like any
  payout; nothing here calls MTN.
- ``payout_batch_item_final`` is called by ``transfer_transition`` (the one status writer)
  in the transaction that makes an item final: it moves the batch's counters and, in the
  one transaction that finishes its last item, completes the batch and writes
  ``payout_batch.completed`` into the outbox.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Round
from django.utils import timezone

from gateway.audit import Actor, audit_event
from gateway.idempotency import (
    Claim,
    Executed,
    NewClaim,
    idempotency_link,
)
from gateway.models import AuditEvent
from gateway.request_context import get_request_id
from gateway.sql import copy_insert, dispatcher_wake
from payments.models import MoneyTransfer, Payout, PayoutBatch
from payments.representation import batch_representation
from payments.routing import transfer_account_route
from payments.services.funds import funds_reserve_batch
from payments.states import Status
from webhooks.outbox import outbox_enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchItem:
    """One payout of a batch, validated (``payments.api.batch_input``)."""

    payee: str
    amount: Decimal
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchRequest:
    currency: str
    reference: str | None
    description: str | None
    items: list[BatchItem]


def payout_batch_create(
    *, tenant: Any, actor: Actor, request: BatchRequest, idempotency_claim: Claim | None = None
) -> PayoutBatch:
    """Store a batch and its items as ``PENDING`` payouts due now, in one transaction.

    The items and their ``payout.created`` events go in with ``COPY`` on PostgreSQL (one
    stream each; measured in ``bench/batches.py``: ``bulk_create`` spent most of a 5,000-item
    request building model instances and SQL), each item with its own MTN reference and
    callback token (the fields' defaults, drawn per row).

    The MTN account is routed once, for the batch, and recorded on every item. Through a
    platform account the batch's total is reserved from the tenant's available balance in
    one posting; ``InsufficientFunds`` (a 422) when it is short, and then nothing is written.
    The idempotency key is linked in the same transaction (``IdempotencyKeyTaken`` if another
    request won it). Each item gets a ``payout.created`` audit event naming the batch.
    """
    now = timezone.now()
    total = sum((item.amount for item in request.items), start=Decimal(0))
    batch = PayoutBatch(
        tenant=tenant,
        currency=request.currency,
        reference=request.reference,
        description=request.description,
        mtn_account=transfer_account_route(tenant_id=tenant.pk, currency=request.currency),
        count=len(request.items),
        total_amount=total,
        pending_count=len(request.items),
    )
    actor_fields = {"actor_type": actor.type, "actor_id": actor.id or ""}
    payouts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for index, item in enumerate(request.items):
        payout_id, reference_id = uuid.uuid4(), uuid.uuid4()
        payouts.append(
            {
                "id": payout_id,
                "tenant_id": tenant.pk,
                "batch_id": batch.pk,
                "batch_index": index,
                "amount": item.amount,
                "currency": request.currency,
                "payee": item.payee,
                "reference": item.reference,
                "description": item.description,
                "metadata": item.metadata,
                "mtn_account": batch.mtn_account,
                "mtn_reference_id": reference_id,
                # Due now: no request thread submits a batch's items, the dispatcher does.
                "next_attempt_at": now,
            }
        )
        events.append(
            {
                "tenant_id": tenant.pk,
                "object_type": "payout",
                "object_id": str(payout_id),
                "action": "payout.created",
                **actor_fields,
                "data": {
                    "amount": str(item.amount),
                    "currency": request.currency,
                    "mtn_reference_id": str(reference_id),
                    "batch": str(batch.pk),
                },
                "request_id": get_request_id() or "",
            }
        )
    try:
        with transaction.atomic():
            batch.save(force_insert=True)
            funds_reserve_batch(batch=batch)
            idempotency_link(idempotency_claim, resource_type="payout_batch", resource_id=batch.pk)
            copy_insert(Payout, payouts)
            copy_insert(AuditEvent, events)
            dispatcher_wake()  # its items are due now: the NOTIFY is delivered at commit
            audit_event(
                tenant=tenant,
                object_type="payout_batch",
                object_id=batch.pk,
                action="payout_batch.created",
                actor=actor,
                data={
                    "count": batch.count,
                    "total_amount": str(batch.total_amount),
                    "currency": batch.currency,
                    "account": batch.mtn_account,
                },
            ).save(force_insert=True)
    except BaseException:
        if isinstance(idempotency_claim, NewClaim):
            # The key's row was rolled back with everything else (a 422 insufficient_funds,
            # say): forget it, so that the idempotency layer stores the answer on a new row.
            idempotency_claim.row = None
        raise
    logger.info(
        "payout batch created: %s items, %s %s",
        batch.count,
        batch.total_amount,
        batch.currency,
        extra={"event": "payout_batch.created", "tenant": tenant.slug, "payment_id": batch.pk},
    )
    return batch


def payout_batch_create_and_answer(
    *, tenant: Any, actor: Actor, request: BatchRequest, idempotency_claim: Claim
) -> Executed:
    """What ``POST /payout_batches`` does once the request is valid: 201 with the batch."""
    batch = payout_batch_create(
        tenant=tenant, actor=actor, request=request, idempotency_claim=idempotency_claim
    )
    return Executed(201, batch_representation(batch))


def payout_batch_item_final(*, transfer: MoneyTransfer) -> None:
    """Count a batch item that just became final; complete the batch with its last item.

    Call it in the status writer's transaction, once per transfer that becomes final (the
    writer changes a status once); anything but a batch's payout is left alone. The
    counters move in one ``UPDATE`` that holds the batch's row until the transaction ends,
    so items finishing at the same time are counted one after the other, exactly; the one
    whose update brings ``pending_count`` to zero completes the batch (a second guarded
    ``UPDATE``) and writes ``payout_batch.completed`` into the outbox in
    that same transaction, so the event is written exactly once.
    """
    batch_id = getattr(transfer, "batch_id", None)
    if batch_id is None:
        return
    succeeded = transfer.status == Status.SUCCESSFUL
    now = timezone.now()
    changes: dict[str, Any] = {"pending_count": F("pending_count") - 1, "updated_at": now}
    if succeeded:
        changes["successful_count"] = F("successful_count") + 1
        # ROUND: SQLite adds decimals as floats; a no-op on PostgreSQL (as in the ledger).
        changes["amount_succeeded"] = Round(F("amount_succeeded") + transfer.amount, 2)
    else:
        changes["failed_count"] = F("failed_count") + 1
    PayoutBatch.objects.filter(pk=batch_id, pending_count__gt=0).update(**changes)
    completed = PayoutBatch.objects.filter(
        pk=batch_id, pending_count=0, status=PayoutBatch.State.PROCESSING
    ).update(status=PayoutBatch.State.COMPLETED, completed_at=now, updated_at=now)
    if not completed:
        return
    batch = PayoutBatch.objects.select_related("tenant").get(pk=batch_id)
    audit_event(
        tenant=batch.tenant,
        object_type="payout_batch",
        object_id=batch.pk,
        action="payout_batch.completed",
        actor=Actor.system(),
        data={
            "successful": batch.successful_count,
            "failed": batch.failed_count,
            "amount_succeeded": str(batch.amount_succeeded),
        },
    ).save(force_insert=True)
    outbox_enqueue(
        tenant=batch.tenant,
        event_type="payout_batch.completed",
        object_type="payout_batch",
        object_id=batch.pk,
        data=batch_representation(batch),
    )
    logger.info(
        "payout batch completed: %s successful, %s failed",
        batch.successful_count,
        batch.failed_count,
        extra={
            "event": "payout_batch.completed",
            "tenant": batch.tenant.slug,
            "payment_id": batch.pk,
        },
    )


def payout_batch_item_corrected(*, transfer: MoneyTransfer, previous: str) -> None:
    """Move a batch item's count when staff give its final status MTN's other one.

    Call it in the transaction of the correction (``transfer_resolve --accept-mtn``), with
    the status the item had before. The batch stays ``COMPLETED``: no item left it final;
    its counts and ``amount_succeeded`` say what MTN did. Anything but a batch's payout, or
    a status that did not change, is left alone.
    """
    batch_id = getattr(transfer, "batch_id", None)
    if batch_id is None or previous == transfer.status:
        return
    amount = Round(F("amount_succeeded") + transfer.amount, 2)
    changes: dict[str, Any] = {"updated_at": timezone.now()}
    if transfer.status == Status.SUCCESSFUL:
        changes.update(
            successful_count=F("successful_count") + 1,
            failed_count=F("failed_count") - 1,
            amount_succeeded=amount,
        )
    else:
        changes.update(
            successful_count=F("successful_count") - 1,
            failed_count=F("failed_count") + 1,
            amount_succeeded=Round(F("amount_succeeded") - transfer.amount, 2),
        )
    PayoutBatch.objects.filter(pk=batch_id).update(**changes)
