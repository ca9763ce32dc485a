"""Settling a submitted transfer: poll MTN, apply MTN's word, and the one status writer.

Guarantees, in the words of ``architecture.md``:
- ``transfer_transition`` is the only code that changes ``status``; it locks the row,
  treats a repeat as a no-op, refuses what the state table forbids, records an audit
  event and writes the merchant webhook into the outbox, all in one transaction;
- no network call is made while a row lock is held.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from gateway.audit import Actor, audit_record
from gateway.money import same_amount
from mtn.calls import Job, MtnCall, PermitTimeout, call_within_limits, run_inline
from mtn.client import MtnClient, TransactionStatus
from mtn.errors import MtnError, MtnNotFoundError, MtnRetryableError
from payments.errors import InvalidTransition
from payments.models import MoneyTransfer
from payments.representation import transfer_representation
from payments.routing import transfer_account, transfer_client
from payments.schedule import backoff_delay
from payments.services.batches import payout_batch_item_final
from payments.services.common import describe_mtn_error, lock_transfer
from payments.services.funds import funds_on_final
from payments.states import Status, Submission, can_transition, is_final
from webhooks.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

# A person's re-check waits this long at most for a permit from the account's MTN limits.
RECHECK_PERMIT_WAIT_SECONDS = 5.0


def transfer_fetch_mtn_status(
    *, transfer: MoneyTransfer, client: MtnClient | None = None
) -> TransactionStatus:
    """Ask MTN's status endpoint (one attempt) through the account that carries ``transfer``
    (``client`` overrides it, for tests); raises ``MtnError``."""
    client = client or transfer_client(transfer)
    reference_id = transfer.mtn_reference_id
    if transfer.kind == "payment":
        return client.request_to_pay_status(reference_id=reference_id, retry=False)
    if transfer.kind == "refund":
        return client.refund_status(reference_id=reference_id, retry=False)
    return client.transfer_status(reference_id=reference_id, retry=False)


def transfer_poll_job(
    *, transfer: MoneyTransfer, client: MtnClient | None = None
) -> Job[MoneyTransfer]:
    """Poll MTN for a submitted, still-pending payment; apply a final status or reschedule.

    A job (``mtn.calls``): it yields its one status call and records the answer."""
    if transfer.submission != Submission.SUBMITTED or is_final(transfer.status):
        return transfer
    try:
        account = transfer_account(transfer)
    except MtnError as exc:
        return _reschedule_poll(transfer, error=describe_mtn_error(exc))
    call = MtnCall(
        account=account,
        request=partial(_status_of, transfer=transfer),
        client=client,
        tenant_id=transfer.tenant_id,
    )
    try:
        mtn_status = yield call
    except MtnNotFoundError as exc:
        # Right after a 202 MTN may briefly not know the reference yet: poll again later.
        return _reschedule_poll(transfer, error=describe_mtn_error(exc))
    except MtnError as exc:
        return _reschedule_poll(
            transfer, error=describe_mtn_error(exc), retry_after=exc.retry_after
        )
    if mtn_status.is_final:
        result = transfer_apply_mtn_status(transfer=transfer, mtn_status=mtn_status, source="poll")
        if result.outcome != Applied.MISMATCH:
            return result.transfer
        # A mismatch stays pending for a person to look at; keep polling, slowly.
        return _reschedule_poll(result.transfer, error="MTN's record differs from ours")
    return _reschedule_poll(transfer, error="")


def transfer_poll(*, transfer: MoneyTransfer, client: MtnClient | None = None) -> MoneyTransfer:
    """``transfer_poll_job`` run in this thread (within the account's limits)."""
    return run_inline(transfer_poll_job(transfer=transfer, client=client))


def _status_of(client: MtnClient, *, transfer: MoneyTransfer) -> TransactionStatus:
    return transfer_fetch_mtn_status(transfer=transfer, client=client)


def _reschedule_poll(
    transfer: MoneyTransfer, *, error: str, retry_after: float | None = None
) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if is_final(locked.status) or locked.submission != Submission.SUBMITTED:
            return locked
        locked.poll_attempts += 1
        since = locked.submitted_at or locked.created_at
        delay = backoff_delay(locked.poll_attempts, now - since)
        if retry_after:
            delay = max(delay, timedelta(seconds=min(retry_after, 300)))
        locked.next_attempt_at = now + delay
        locked.last_error = error
        locked.save(update_fields=["poll_attempts", "next_attempt_at", "last_error", "updated_at"])
    return locked


def _fetch_within_limits(transfer: MoneyTransfer) -> TransactionStatus:
    """The status call of a person's re-check, within the account's MTN limits: waits up to
    ``RECHECK_PERMIT_WAIT_SECONDS`` for a permit, else ``MtnRetryableError`` (not asked)."""
    account = transfer_account(transfer)
    try:
        return call_within_limits(
            account,
            lambda: transfer_fetch_mtn_status(transfer=transfer),
            wait_up_to=RECHECK_PERMIT_WAIT_SECONDS,
        )
    except PermitTimeout as exc:
        raise MtnRetryableError(
            "ACCOUNT_BUSY", "The MTN account's call limits are in use; try again in a moment."
        ) from exc


def transfer_recheck(*, transfer: MoneyTransfer, actor: Actor) -> ApplyResult:
    """Support's "re-check with MTN": ask the status endpoint now and apply a final answer.

    Recorded in the audit trail whatever MTN says. Raises ``MtnError`` when MTN cannot be
    asked or does not know the reference (``MtnNotFoundError``); nothing changes then.
    """
    try:
        mtn_status = _fetch_within_limits(transfer)
    except MtnError as exc:
        audit_record(
            tenant=transfer.tenant,
            object_type=transfer.kind,
            object_id=transfer.pk,
            action=f"{transfer.kind}.rechecked",
            actor=actor,
            data={"error": exc.code, "http_status": exc.status_code},
        )
        raise
    result = transfer_apply_mtn_status(
        transfer=transfer, mtn_status=mtn_status, source=f"recheck:{actor.id or actor.type}"
    )
    audit_record(
        tenant=transfer.tenant,
        object_type=transfer.kind,
        object_id=transfer.pk,
        action=f"{transfer.kind}.rechecked",
        actor=actor,
        data={"mtn_status": mtn_status.raw_status or mtn_status.status, "outcome": result.outcome},
    )
    return result


# --- apply MTN's word -----------------------------------------------------------------------


def transfer_mismatch(transfer: MoneyTransfer, mtn_status: TransactionStatus) -> list[str]:
    """Which of amount, currency, party and externalId MTN reports differently; for a
    ``SUCCESSFUL`` answer also a missing or unreadable amount or currency (``amount_missing``,
    ``currency_missing``): MTN's success is applied only at our amount and currency."""
    problems = []
    if mtn_status.amount is not None and not same_amount(mtn_status.amount, transfer.amount):
        problems.append("amount")
    if mtn_status.currency and mtn_status.currency != transfer.currency:
        problems.append("currency")
    if mtn_status.party_id and mtn_status.party_id != transfer.party:
        problems.append(transfer.party_field)
    if mtn_status.external_id and mtn_status.external_id != str(transfer.id):
        problems.append("externalId")
    if mtn_status.status == Status.SUCCESSFUL:
        if mtn_status.amount is None:
            problems.append("amount_missing")
        if not mtn_status.currency:
            problems.append("currency_missing")
    return problems


class Applied(models.TextChoices):
    """What applying MTN's word to a payment did."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # already in that status: a repeat
    CONTRADICTED = "contradicted"  # already final with the other status: flagged
    MISMATCH = "mismatch"  # amount, currency, party or externalId differ: flagged
    NOT_FINAL = "not_final"  # MTN still says pending


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    transfer: MoneyTransfer
    outcome: str


def transfer_apply_mtn_status(
    *, transfer: MoneyTransfer, mtn_status: TransactionStatus, source: str
) -> ApplyResult:
    """Apply a final status that MTN reported (by its status endpoint, or a trusted callback).

    Every path that hears MTN comes here, so this is where MTN's word is compared with ours:
    a status whose amount, currency, party or externalId differs, or a ``SUCCESSFUL`` without
    a readable amount and currency, is not applied and the object is flagged for review
    (``MISMATCH``); a final status other than the object's own final status changes nothing
    and flags it (``CONTRADICTED``). A non-final status or a repeat changes nothing.
    """
    if not mtn_status.is_final:
        return ApplyResult(transfer, Applied.NOT_FINAL)
    problems = transfer_mismatch(transfer, mtn_status)
    if problems:
        flagged = transfer_flag_for_review(
            transfer=transfer, problems=problems, source=source, mtn_status=mtn_status
        )
        return ApplyResult(flagged, Applied.MISMATCH)
    target = Status.SUCCESSFUL if mtn_status.status == Status.SUCCESSFUL else Status.FAILED
    failed = target == Status.FAILED
    try:
        transition = transfer_transition(
            transfer=transfer,
            target=target,
            actor=Actor.mtn(),
            failure_code=(mtn_status.reason_code or "UNKNOWN") if failed else "",
            failure_message=(mtn_status.reason_message or mtn_status.reason_code or "")
            if failed
            else "",
            financial_transaction_id=mtn_status.financial_transaction_id or "",
            data={"source": source},
        )
    except InvalidTransition:
        # Final already, and MTN says otherwise: its word is the truth about the money, but a
        # final status changes only by a person's decision. Flag it, change nothing.
        flagged = transfer_flag_for_review(
            transfer=transfer, problems=["status"], source=source, mtn_status=mtn_status
        )
        return ApplyResult(flagged, Applied.CONTRADICTED)
    if not transition.changed and transition.transfer.needs_review:
        _note_agreement(transition.transfer, mtn_status, source)
    return ApplyResult(
        transition.transfer, Applied.APPLIED if transition.changed else Applied.UNCHANGED
    )


def _note_agreement(transfer: MoneyTransfer, mtn_status: TransactionStatus, source: str) -> None:
    """MTN changed its mind back: it now agrees with a flagged object's status. Its latest
    word becomes the claim (so that accepting MTN's status moves nothing); the flag stays for
    a person to close, with the change in the audit trail."""
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if not locked.needs_review or locked.mtn_claim_status == mtn_status.status:
            return
        locked.mtn_claim_status = mtn_status.status[:16]
        locked.mtn_claim = dict(mtn_status.raw)
        locked.review_reason = (
            f"MTN now reports {mtn_status.status}, as we do (earlier: {locked.review_reason})"
        )[:500]
        locked.save(update_fields=["mtn_claim_status", "mtn_claim", "review_reason", "updated_at"])
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=f"{locked.kind}.mtn_agrees",
            actor=Actor.mtn(),
            data={"source": source, "mtn_status": mtn_status.status, "mtn": dict(mtn_status.raw)},
        )


_PROBLEM_TEXT = {
    "amount_missing": "MTN's SUCCESSFUL answer has no readable amount",
    "currency_missing": "MTN's SUCCESSFUL answer has no currency",
    "not_found": "MTN's status endpoint does not know this reference (never received)",
}


def review_reason(
    transfer: MoneyTransfer, problems: list[str], mtn_status: TransactionStatus
) -> str:
    """One sentence for the admin and the audit trail: what MTN claims that we do not."""
    parts = []
    if "status" in problems:
        parts.append(f"MTN reports {mtn_status.status}; the {transfer.kind} is {transfer.status}")
    differing = [p for p in problems if p not in _PROBLEM_TEXT and p != "status"]
    if differing:
        claimed = {
            "amount": f"amount {mtn_status.raw.get('amount')!r} (ours {transfer.amount})",
            "currency": f"currency {mtn_status.currency!r} (ours {transfer.currency})",
            "externalId": f"externalId {mtn_status.external_id!r}",
        }
        shown = [claimed.get(p, f"{p} {mtn_status.party_id!r}") for p in differing]
        parts.append(f"MTN's {mtn_status.status} answer differs: " + ", ".join(shown))
    parts.extend(_PROBLEM_TEXT[p] for p in problems if p in _PROBLEM_TEXT)
    return "; ".join(parts)[:500]


def transfer_flag_for_review(
    *,
    transfer: MoneyTransfer,
    problems: list[str],
    source: str,
    mtn_status: TransactionStatus,
) -> MoneyTransfer:
    """Flag ``transfer`` because MTN's word (``mtn_status``) disagrees with it.

    In one transaction: ``needs_review`` with the reason and MTN's answer as received, an
    audit event recording MTN's claim, and the merchant's ``<kind>.needs_review`` event with
    the object. A disagreement already known (the same reason and MTN status, whether still
    flagged or kept by a person) writes nothing again, so polls and repeats do not pile up.
    """
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if {"status", "not_found"} & set(problems) and locked.status == mtn_status.status:
            return locked  # resolved meanwhile: MTN and the object now agree
        reason = review_reason(locked, problems, mtn_status)
        claim_status = mtn_status.status[:16]
        if locked.review_reason == reason and locked.mtn_claim_status == claim_status:
            return locked
        locked.needs_review = True
        locked.review_reason = reason
        locked.mtn_claim_status = claim_status
        locked.mtn_claim = dict(mtn_status.raw)
        locked.flagged_at = timezone.now()
        locked.save(
            update_fields=[
                "needs_review",
                "review_reason",
                "mtn_claim_status",
                "mtn_claim",
                "flagged_at",
                "updated_at",
            ]
        )
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=f"{locked.kind}.flagged_for_review",
            actor=Actor.mtn(),
            data={
                "reason": reason,
                "mismatch": problems,
                "source": source,
                "status": locked.status,
                "mtn_status": claim_status,
                "mtn": dict(mtn_status.raw),
            },
        )
        outbox_enqueue(
            tenant=locked.tenant,
            event_type=f"{locked.kind}.needs_review",
            object_type=locked.kind,
            object_id=locked.pk,
            data=transfer_representation(locked),
            review=True,
        )
    logger.warning(
        "%s %s flagged for review: %s",
        locked.kind,
        locked.pk,
        reason,
        extra={
            "event": f"{locked.kind}.flagged_for_review",
            "tenant": locked.tenant.slug,
            "payment_id": locked.pk,
        },
    )
    return locked


# --- the one status writer ------------------------------------------------------------------

_EVENT_NAMES: dict[str, str] = {Status.SUCCESSFUL: "succeeded", Status.FAILED: "failed"}


@dataclasses.dataclass(frozen=True)
class Transition:
    """What ``transfer_transition`` did: the locked, current row and whether it changed."""

    transfer: MoneyTransfer
    changed: bool


def transfer_transition(
    *,
    transfer: MoneyTransfer,
    target: str,
    actor: Actor,
    failure_code: str = "",
    failure_message: str = "",
    financial_transaction_id: str = "",
    data: dict[str, Any] | None = None,
) -> Transition:
    """Move a payment, payout or refund to ``target``: the only code that writes ``status``.

    Locks the row; a repeat of the current status is a no-op; a transition the state table
    forbids raises ``InvalidTransition`` and changes nothing. On reaching a final state it
    posts what that means for the money (``funds_on_final``), records the audit event and
    writes the merchant webhook into the outbox, all in the same transaction.
    """
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.status == target:
            return Transition(locked, changed=False)
        if not can_transition(locked.status, target):
            raise InvalidTransition(f"{locked.kind} {locked.pk} is {locked.status}; not {target}.")
        now = timezone.now()
        locked.status = target
        locked.finalized_at = now if is_final(target) else None
        if is_final(target):
            locked.next_attempt_at = None
        locked.failure_code = failure_code[:64]
        locked.failure_message = failure_message[:500]
        if financial_transaction_id:
            locked.mtn_financial_transaction_id = financial_transaction_id[:64]
        if is_final(target) and locked.submission in (Submission.QUEUED, Submission.CHECKING):
            # MTN reported a final status for our reference, so MTN has the transaction even
            # though the answer to our submission was lost (a crash, a timeout): it was
            # submitted, and nothing is left for the worker to send.
            locked.submission = Submission.SUBMITTED
            locked.submitted_at = locked.submitted_at or now
        locked.save(
            update_fields=[
                "status",
                "finalized_at",
                "next_attempt_at",
                "failure_code",
                "failure_message",
                "mtn_financial_transaction_id",
                "submission",
                "submitted_at",
                "updated_at",
            ]
        )
        event_name = f"{locked.kind}.{_EVENT_NAMES.get(target, target.lower())}"
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=event_name,
            actor=actor,
            data={
                **(data or {}),
                "status": target,
                **({"failure_code": failure_code} if failure_code else {}),
                **(
                    {"financial_transaction_id": financial_transaction_id}
                    if financial_transaction_id
                    else {}
                ),
            },
        )
        if is_final(target):
            funds_on_final(transfer=locked)
            outbox_enqueue(
                tenant=locked.tenant,
                event_type=event_name,
                object_type=locked.kind,
                object_id=locked.pk,
                data=transfer_representation(locked),
            )
            payout_batch_item_final(transfer=locked)
    logger.info(
        "%s %s",
        locked.kind,
        target,
        extra={"event": event_name, "tenant": locked.tenant.slug, "payment_id": locked.pk},
    )
    return Transition(locked, changed=True)
