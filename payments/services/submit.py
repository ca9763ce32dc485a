"""Submitting a transfer to MTN exactly once, under the reference stored when it was created.

202, or 409 for our own reference (an earlier attempt landed), is ``submitted``; a permanent
rejection makes it ``FAILED``; retryable errors leave it queued for the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from gateway.audit import Actor, audit_record
from gateway.db import commit_without_waiting_for_disk
from gateway.money import format_amount
from mtn.accounts import mtn_client_for
from mtn.client import MtnClient, SubmitResult
from mtn.errors import MtnError
from mtn.models import MtnAccount
from payments.models import MoneyTransfer, Refund
from payments.schedule import backoff_delay
from payments.services.common import (
    callback_url_for,
    describe_mtn_error,
    lock_transfer,
    transfer_account,
)
from payments.services.settle import transfer_transition
from payments.states import Status, Submission, is_final


def _send(
    client: MtnClient, transfer: MoneyTransfer, *, account: MtnAccount, retry: bool
) -> SubmitResult:
    """The MTN operation that carries this kind of transfer, under its stored reference,
    with the callback URL of the account that carries it."""
    message = transfer.message_for_mtn
    common: dict[str, Any] = {
        "reference_id": transfer.mtn_reference_id,
        "amount": format_amount(transfer.amount, transfer.currency),
        "currency": transfer.currency,
        "external_id": str(transfer.id),
        "payer_message": message,
        "payee_note": message,
        "callback_url": callback_url_for(transfer, account),
        "retry": retry,
    }
    if isinstance(transfer, Refund):
        # MTN pays back whoever paid the request-to-pay it names (reference section 5).
        return client.refund(reference_id_to_refund=transfer.payment.mtn_reference_id, **common)
    if transfer.kind == "payment":
        return client.request_to_pay(payer_msisdn=transfer.party, **common)
    return client.transfer(payee_msisdn=transfer.party, **common)


def transfer_submit(
    *,
    transfer: MoneyTransfer,
    client: MtnClient | None = None,
    retry: bool = True,
    also_when_submitted: Callable[[MoneyTransfer], None] | None = None,
) -> MoneyTransfer:
    """Send a queued payment or payout to MTN under its stored reference; record the outcome.

    202, or 409 for our own reference (an earlier attempt landed), is ``submitted``. A
    permanent rejection makes it ``FAILED`` with MTN's code and message. Retryable errors,
    past the retry budget, leave it ``PENDING`` and due for the worker within 5 seconds.
    Safe to call twice: a payment no longer queued is returned unchanged without a call.
    ``also_when_submitted`` runs inside the transaction that records a submission (the API
    stores its idempotent answer there). It goes through the MTN account recorded on it
    (``client`` overrides only the client, for tests), with that account's callback URL.
    """
    if transfer.submission != Submission.QUEUED or is_final(transfer.status):
        return transfer
    try:
        account = transfer_account(transfer)
        result = _send(client or mtn_client_for(account), transfer, account=account, retry=retry)
    except MtnError as exc:
        if exc.retryable:
            return _record_submit_retry(transfer, exc)
        return _record_submit_rejected(transfer, exc)
    return _record_submitted(
        transfer, already_existed=result.already_existed, also=also_when_submitted
    )


def _record_submitted(
    transfer: MoneyTransfer,
    *,
    already_existed: bool,
    also: Callable[[MoneyTransfer], None] | None = None,
) -> MoneyTransfer:
    """Mark a queued payment submitted. One conditional UPDATE, no row lock to take first:
    only a payment still ``queued`` changes, so a concurrent recorder cannot double-count.

    This commit need not wait for the disk: if a crash loses it, the payment is still
    ``queued`` and the worker submits it again under the same reference, which MTN answers
    with 409 (already submitted), and the request's idempotency key is recovered after its
    lock expires. Nothing is lost or sent twice, and every create saves a disk flush.
    """
    now = timezone.now()
    poll_at = now + timedelta(seconds=settings.MTN_STATUS_POLL_AFTER_SECONDS)
    model = type(transfer)
    with transaction.atomic():
        commit_without_waiting_for_disk()
        changed = model._default_manager.filter(
            pk=transfer.pk, submission=Submission.QUEUED
        ).update(
            submission=Submission.SUBMITTED,
            submitted_at=now,
            submit_attempts=F("submit_attempts") + 1,
            last_error="",
            # A callback may already have made it final (which cleared next_attempt_at).
            next_attempt_at=Case(When(status=Status.PENDING, then=Value(poll_at)), default=None),
            updated_at=now,
        )
        if not changed:
            return model._default_manager.select_related("tenant").get(pk=transfer.pk)
        audit_record(
            tenant=transfer.tenant,
            object_type=transfer.kind,
            object_id=transfer.pk,
            action=f"{transfer.kind}.submitted",
            actor=Actor.system(),
            data={"attempt": transfer.submit_attempts + 1, "already_existed": already_existed},
        )
        transfer.submission = Submission.SUBMITTED
        transfer.submitted_at = now
        transfer.submit_attempts += 1
        transfer.last_error = ""
        transfer.updated_at = now
        if transfer.status == Status.PENDING:
            transfer.next_attempt_at = poll_at
        if also is not None:
            also(transfer)
    return transfer


def _record_submit_rejected(transfer: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.QUEUED:
            return locked
        if is_final(locked.status):
            # An earlier try landed and MTN's (confirmed) word settled it while this one was
            # in flight: MTN has the transaction, whatever this late answer says.
            return _mark_submitted_after_settlement(locked)
        locked.submission = Submission.REJECTED
        locked.submit_attempts += 1
        locked.last_error = describe_mtn_error(exc)
        locked.save(update_fields=["submission", "submit_attempts", "last_error", "updated_at"])
        return transfer_transition(
            transfer=locked,
            target=Status.FAILED,
            actor=Actor.mtn(),
            failure_code=exc.code,
            failure_message=exc.message,
            data={"http_status": exc.status_code, "stage": "submission"},
        ).transfer


def _mark_submitted_after_settlement(locked: MoneyTransfer) -> MoneyTransfer:
    """A payment MTN settled while our submission's answer was lost or late was submitted."""
    now = timezone.now()
    locked.submission = Submission.SUBMITTED
    locked.submitted_at = locked.submitted_at or now
    locked.submit_attempts += 1
    locked.last_error = ""
    locked.save(
        update_fields=["submission", "submitted_at", "submit_attempts", "last_error", "updated_at"]
    )
    return locked


def _record_submit_retry(transfer: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.QUEUED:
            return locked
        if is_final(locked.status):
            # Settled meanwhile (see above): no retry to schedule, and MTN has it.
            return _mark_submitted_after_settlement(locked)
        locked.submit_attempts += 1
        delay = backoff_delay(locked.submit_attempts, now - locked.created_at)
        if exc.retry_after:
            delay = max(delay, timedelta(seconds=min(exc.retry_after, 300)))
        locked.next_attempt_at = now + delay
        locked.last_error = describe_mtn_error(exc)
        locked.save(
            update_fields=["submit_attempts", "next_attempt_at", "last_error", "updated_at"]
        )
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=f"{locked.kind}.submit_deferred",
            actor=Actor.system(),
            data={
                "attempt": locked.submit_attempts,
                "error": exc.code,
                "http_status": exc.status_code,
                "next_attempt_at": locked.next_attempt_at.isoformat(),
            },
        )
    return locked
