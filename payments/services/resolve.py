"""A person's decision about a transfer flagged for review (contract: When MTN disagrees).

- ``keep``: our record stands; the decision is audited and the flag cleared. The same claim
  from MTN does not flag it again (``transfer_flag_for_review`` knows it).
- ``accept_mtn``: the object takes MTN's final status. This is the one way a final status
  ever changes: by a person, audited, with a reason. The ledger gets one ``correction``
  (``funds_correct``) so that balances are what MTN's status would have made them, and the
  merchant the event of the new status with ``"corrected": true``. A pending object flagged
  (e.g. MTN's SUCCESSFUL without an amount) simply takes MTN's status as MTN's answer would
  have, through the status writer.

Both are idempotent: resolving an object that is not flagged changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging

from django.db import transaction
from django.utils import timezone

from gateway.audit import Actor, audit_record
from gateway.money import same_amount
from mtn.values import parse_transaction_status
from payments.models import MoneyTransfer
from payments.representation import transfer_representation
from payments.services.batches import payout_batch_item_corrected
from payments.services.common import lock_transfer
from payments.services.funds import funds_correct
from payments.services.settle import transfer_transition
from payments.states import Status, is_final
from webhooks.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

ACCEPT_MTN = "accept_mtn"
KEEP = "keep"
DECISIONS = (ACCEPT_MTN, KEEP)
_EVENT_NAMES: dict[str, str] = {Status.SUCCESSFUL: "succeeded", Status.FAILED: "failed"}


class ResolutionRefused(ValueError):
    """The decision cannot be carried out as asked; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class Resolution:
    transfer: MoneyTransfer
    changed: bool  # False: it was not flagged (a second resolve), nothing was written
    previous_status: str


def transfer_resolve(
    *, transfer: MoneyTransfer, decision: str, reason: str, actor: Actor
) -> Resolution:
    """Carry out a person's ``decision`` (``accept_mtn`` or ``keep``) on a flagged transfer.

    Raises ``ResolutionRefused`` (nothing changed) for an unknown decision, an empty reason,
    an MTN claim that has no final status or another currency or amount (a person settles
    those by an adjustment, then keeps), or a correction the tenant's balance cannot pay
    (``InsufficientFunds`` underneath).
    """
    from ledger.errors import InsufficientFunds, LedgerInvariantError

    reason = reason.strip()
    if decision not in DECISIONS:
        raise ResolutionRefused(f"The decision must be one of {', '.join(DECISIONS)}.")
    if not reason:
        raise ResolutionRefused("A resolution needs a reason.")
    try:
        with transaction.atomic():
            locked = lock_transfer(transfer)
            previous = locked.status
            if not locked.needs_review:
                return Resolution(locked, changed=False, previous_status=previous)
            if decision == KEEP:
                _clear_flag(locked, decision=KEEP, reason=reason, actor=actor)
                return Resolution(locked, changed=True, previous_status=previous)
            target = _accepted_status(locked)
            if locked.status == target:
                # MTN's status is ours already (the difference was elsewhere): nothing to move.
                _clear_flag(locked, decision=ACCEPT_MTN, reason=reason, actor=actor)
            elif not is_final(locked.status):
                _clear_flag(locked, decision=ACCEPT_MTN, reason=reason, actor=actor)
                claim = parse_transaction_status(locked.mtn_claim or {"status": target})
                transition = transfer_transition(
                    transfer=locked,
                    target=target,
                    actor=actor,
                    failure_code=(claim.reason_code or "UNKNOWN")
                    if target == Status.FAILED
                    else "",
                    failure_message=(claim.reason_message or claim.reason_code or "")
                    if target == Status.FAILED
                    else "",
                    financial_transaction_id=claim.financial_transaction_id or "",
                    data={"source": "review", "reason": reason},
                )
                locked = transition.transfer
            else:
                _correct(locked, target=target, reason=reason, actor=actor)
    except (InsufficientFunds, LedgerInvariantError) as exc:
        raise ResolutionRefused(
            f"The correction cannot be posted: {exc}. Nothing changed; fund the tenant's "
            "balance (balance_adjust) first, or keep our record."
        ) from exc
    logger.warning(
        "%s %s resolved (%s): %s -> %s",
        locked.kind,
        locked.pk,
        decision,
        previous,
        locked.status,
        extra={"event": f"{locked.kind}.review_resolved", "payment_id": locked.pk},
    )
    return Resolution(locked, changed=True, previous_status=previous)


def _accepted_status(locked: MoneyTransfer) -> str:
    claim = parse_transaction_status(locked.mtn_claim) if locked.mtn_claim else None
    status = locked.mtn_claim_status
    if not is_final(status):
        raise ResolutionRefused(
            f"MTN's claim ({status or 'none'}) is not a final status: keep our record, or "
            "re-check with MTN first."
        )
    if claim is not None:
        if claim.currency and claim.currency != locked.currency:
            raise ResolutionRefused(
                f"MTN reports {claim.currency}, not {locked.currency}: settle the difference "
                "by an adjustment, then keep."
            )
        if claim.amount is not None and not same_amount(claim.amount, locked.amount):
            raise ResolutionRefused(
                f"MTN reports an amount of {claim.amount}, not {locked.amount}: settle the "
                "difference by an adjustment, then keep."
            )
    return status


def _clear_flag(locked: MoneyTransfer, *, decision: str, reason: str, actor: Actor) -> None:
    locked.needs_review = False
    locked.save(update_fields=["needs_review", "updated_at"])
    audit_record(
        tenant=locked.tenant,
        object_type=locked.kind,
        object_id=locked.pk,
        action=f"{locked.kind}.review_resolved",
        actor=actor,
        data={
            "decision": decision,
            "reason": reason,
            "status": locked.status,
            "mtn_status": locked.mtn_claim_status,
        },
    )


def _correct(locked: MoneyTransfer, *, target: str, reason: str, actor: Actor) -> None:
    """Give the final ``locked`` row MTN's other final status, with the ledger's correction,
    the audit event and the merchant's event marked ``corrected``."""
    previous = locked.status
    claim = parse_transaction_status(locked.mtn_claim)
    locked.status = target
    locked.needs_review = False
    if target == Status.FAILED:
        locked.failure_code = (claim.reason_code or "UNKNOWN")[:64]
        locked.failure_message = (claim.reason_message or claim.reason_code or "")[:500]
    else:
        locked.failure_code = ""
        locked.failure_message = ""
        if claim.financial_transaction_id:
            locked.mtn_financial_transaction_id = claim.financial_transaction_id[:64]
    locked.finalized_at = timezone.now()
    locked.save(
        update_fields=[
            "status",
            "needs_review",
            "failure_code",
            "failure_message",
            "mtn_financial_transaction_id",
            "finalized_at",
            "updated_at",
        ]
    )
    funds_correct(transfer=locked, previous=previous, reason=reason)
    payout_batch_item_corrected(transfer=locked, previous=previous)
    event_name = f"{locked.kind}.{_EVENT_NAMES[target]}"
    audit_record(
        tenant=locked.tenant,
        object_type=locked.kind,
        object_id=locked.pk,
        action=f"{locked.kind}.corrected",
        actor=actor,
        data={
            "decision": ACCEPT_MTN,
            "reason": reason,
            "from": previous,
            "status": target,
            "mtn": locked.mtn_claim,
        },
    )
    if hasattr(locked, "amount_refunded"):
        locked.refresh_from_db(fields=["amount_refunded"])
    outbox_enqueue(
        tenant=locked.tenant,
        event_type=event_name,
        object_type=locked.kind,
        object_id=locked.pk,
        data={**transfer_representation(locked), "corrected": True},
        review=True,
    )
