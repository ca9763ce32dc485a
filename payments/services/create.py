"""Creating a payment or payout: stored with its MTN reference before anything is sent."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateway.audit import Actor, audit_event
from gateway.idempotency import (
    KEY_CONSTRAINT,
    Claim,
    Executed,
    IdempotencyKeyTaken,
    idempotency_complete,
    idempotency_link,
    idempotency_new_row,
)
from gateway.sql import insert_together, is_unique_violation
from payments.models import MoneyTransfer
from payments.representation import transfer_representation
from payments.services.common import in_request_lease
from payments.services.submit import transfer_submit

logger = logging.getLogger(__name__)


def transfer_create(
    *,
    model: type[MoneyTransfer],
    tenant: Any,
    actor: Actor,
    amount: Decimal,
    currency: str,
    party: str,
    reference: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_claim: Claim | None = None,
) -> MoneyTransfer:
    """Store a new ``PENDING`` payment or payout, queued for submission, in one transaction.

    This is the recovery point: from here on the object exists with its MTN reference, and
    the worker submits it if the caller never does. The idempotency claim is linked to it in
    the same transaction.
    """
    now = timezone.now()
    transfer = model(
        tenant=tenant,
        amount=amount,
        currency=currency,
        reference=reference,
        description=description,
        metadata=metadata or {},
        next_attempt_at=now + in_request_lease(),
        **{model.party_field: party},
    )
    created = audit_event(
        tenant=tenant,
        object_type=model.kind,
        object_id=transfer.pk,
        action=f"{model.kind}.created",
        actor=actor,
        data={
            "amount": str(amount),
            "currency": currency,
            "mtn_reference_id": str(transfer.mtn_reference_id),
        },
    )
    key_row = idempotency_new_row(
        idempotency_claim, resource_type=model.kind, resource_id=transfer.pk
    )
    if idempotency_claim is None or key_row is not None:
        # The common case: key, payment and event in one statement, one round trip.
        rows = [row for row in (key_row, transfer, created) if row is not None]
        try:
            insert_together(rows)
        except IntegrityError as exc:
            if key_row is not None and is_unique_violation(
                exc, constraint=KEY_CONSTRAINT, table="gateway_idempotencykey"
            ):
                raise IdempotencyKeyTaken() from exc
            raise
        if key_row is not None:
            idempotency_claim.row = key_row
    else:
        # A key re-claimed after a crash, or replacing an expired one.
        with transaction.atomic():
            idempotency_link(idempotency_claim, resource_type=model.kind, resource_id=transfer.pk)
            transfer.save(force_insert=True)
            created.save(force_insert=True)
    logger.info(
        "%s created: %s %s, %s %s",
        model.kind,
        amount,
        currency,
        model.party_field,
        party,
        extra={"event": f"{model.kind}.created", "tenant": tenant.slug, "payment_id": transfer.pk},
    )
    return transfer


def transfer_create_and_submit(
    *,
    model: type[MoneyTransfer],
    tenant: Any,
    actor: Actor,
    validated: dict[str, Any],
    idempotency_claim: Claim,
) -> Executed:
    """What ``POST /payments`` (or ``/payouts``) does once the request is valid.

    Stores the payment with its idempotency key, submits it to MTN, and answers 201 with the
    payment. On a submission the answer is stored on the key in the same transaction that
    records it (one commit for both); otherwise the idempotency layer stores it after.
    """
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
    )
    stored: list[Executed] = []

    def store_answer(submitted: MoneyTransfer) -> None:
        answer = Executed(201, transfer_representation(submitted))
        stored.append(idempotency_complete(idempotency_claim, answer))

    transfer = transfer_submit(transfer=transfer, also_when_submitted=store_answer)
    return stored[0] if stored else Executed(201, transfer_representation(transfer))
