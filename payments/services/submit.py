"""Submitting a transfer to MTN exactly once, under the reference stored when it was created,
and deciding each attempt's outcome by MTN's word only.

Each attempt is one MTN call (the dispatcher's schedule is the retry policy). What happens
next depends on what the answer says and on whether an earlier attempt may have reached MTN
(``may_have_landed`` on the row): the table ``SUBMISSION_OUTCOMES`` below. Once an attempt's
outcome is unknown, no later error makes the transfer ``FAILED``: MTN's status endpoint for
the reference decides (``transfer_check_job``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from gateway.audit import Actor, audit_record
from gateway.db import commit_without_waiting_for_disk
from gateway.money import format_amount
from mtn.calls import Job, MtnCall, run_inline
from mtn.client import MtnClient, SubmitResult
from mtn.errors import (
    MtnConfigurationError,
    MtnError,
    MtnNetworkError,
    MtnNotFoundError,
    MtnProtocolError,
    MtnRateLimitedError,
)
from mtn.models import MtnAccount
from payments.models import MoneyTransfer, Refund
from payments.schedule import backoff_delay
from payments.services.common import (
    callback_url_for,
    describe_mtn_error,
    lock_transfer,
    transfer_account,
)
from payments.services.settle import (
    Applied,
    transfer_apply_mtn_status,
    transfer_fetch_mtn_status,
    transfer_transition,
)
from payments.states import Status, Submission, is_final


class Answer(StrEnum):
    """What one submission attempt's answer says about whether MTN has the transaction."""

    ACCEPTED = "accepted"  # 202
    DUPLICATE = "duplicate"  # 409 for our own reference: an earlier attempt landed
    # Sent, answer unknown: a read timeout, a connection dropped after sending, a 5xx that
    # may have been processed (500, 502-504, SERVICE_UNAVAILABLE), an unreadable answer.
    UNKNOWN = "unknown"
    # Certainly not processed: no connection made, a 429 (refused before processing), the
    # transfer's MTN account missing (nothing was sent).
    NOT_SENT = "not_sent"
    # A definite refusal of this request: a 4xx, a rejection code, a settings error MTN
    # reports as 500 (INVALID_CALLBACK_URL_HOST...), credentials refused (401/403, at the
    # token endpoint too), a TLS error.
    REFUSED = "refused"


class Next(StrEnum):
    """What the gateway does after an attempt."""

    SUBMITTED = "submitted"  # MTN has it: wait for its callback, poll later
    RESEND = "resend"  # stays PENDING; sent again under the same reference on the schedule
    ASK_STATUS = "ask_status"  # stays PENDING; MTN's status endpoint for the reference decides
    FAIL = "fail"  # FAILED with MTN's reason: nothing could have landed


# (this attempt's answer, an earlier attempt may have landed) -> what next. Every row is
# tested (payments/tests/services/test_submission_outcomes.py).
SUBMISSION_OUTCOMES: Mapping[tuple[Answer, bool], Next] = {
    (Answer.ACCEPTED, False): Next.SUBMITTED,
    (Answer.ACCEPTED, True): Next.SUBMITTED,
    (Answer.DUPLICATE, False): Next.SUBMITTED,
    (Answer.DUPLICATE, True): Next.SUBMITTED,
    (Answer.UNKNOWN, False): Next.RESEND,  # and the row remembers: it may have landed
    (Answer.UNKNOWN, True): Next.RESEND,
    (Answer.NOT_SENT, False): Next.RESEND,
    (Answer.NOT_SENT, True): Next.RESEND,
    (Answer.REFUSED, False): Next.FAIL,  # a first refusal: MTN's reason is the outcome
    (Answer.REFUSED, True): Next.ASK_STATUS,  # MTN may have the first: never FAILED on a guess
}


def answer_of(exc: MtnError) -> Answer:
    """Which ``Answer`` an error from one submission attempt is."""
    if isinstance(exc, MtnRateLimitedError):
        return Answer.NOT_SENT
    if isinstance(exc, MtnNetworkError):
        # A connect timeout never sent the request; a reset or a read timeout may have.
        return Answer.NOT_SENT if exc.code == "CONNECT_TIMEOUT" else Answer.UNKNOWN
    if isinstance(exc, MtnConfigurationError) and exc.retryable:
        return Answer.NOT_SENT  # the transfer's account is missing: nothing was sent
    if isinstance(exc, MtnProtocolError) or exc.retryable:
        return Answer.UNKNOWN
    return Answer.REFUSED


def _send(
    client: MtnClient,
    *,
    transfer: MoneyTransfer,
    account: MtnAccount,
    callback_url: str | None,
    refunded_reference: Any,
) -> SubmitResult:
    """The MTN operation that carries this kind of transfer, under its stored reference, in
    one attempt. Runs on a dispatcher thread: everything it needs was read before."""
    message = transfer.message_for_mtn
    common: dict[str, Any] = {
        "reference_id": transfer.mtn_reference_id,
        "amount": format_amount(transfer.amount, transfer.currency),
        "currency": transfer.currency,
        "external_id": str(transfer.id),
        "payer_message": message,
        "payee_note": message,
        "callback_url": callback_url,
        "retry": False,
    }
    if isinstance(transfer, Refund):
        # MTN pays back whoever paid the request-to-pay it names (reference section 5).
        return client.refund(reference_id_to_refund=refunded_reference, **common)
    if transfer.kind == "payment":
        return client.request_to_pay(payer_msisdn=transfer.party, **common)
    return client.transfer(payee_msisdn=transfer.party, **common)


def transfer_submit_job(
    *,
    transfer: MoneyTransfer,
    client: MtnClient | None = None,
    timeout_cap: float | None = None,
) -> Job[MoneyTransfer]:
    """One submission attempt of a queued payment, payout or refund; records its outcome.

    Yields the one MTN call (see ``mtn.calls``); the outcome follows
    ``SUBMISSION_OUTCOMES``. A transfer no longer queued is returned unchanged, without a
    call. It goes through the MTN account recorded on it (``client`` overrides only the
    client, for tests), with that account's callback URL.
    """
    if transfer.submission != Submission.QUEUED or is_final(transfer.status):
        return transfer
    try:
        account = transfer_account(transfer)
    except MtnError as exc:
        return _record_attempt_error(transfer, exc)
    call = MtnCall(
        account=account,
        request=partial(
            _send,
            transfer=transfer,
            account=account,
            callback_url=callback_url_for(transfer, account),
            refunded_reference=(
                transfer.payment.mtn_reference_id if isinstance(transfer, Refund) else None
            ),
        ),
        client=client,
        timeout_cap=timeout_cap,
        tenant_id=transfer.tenant_id,
    )
    try:
        result = yield call
    except MtnError as exc:
        return _record_attempt_error(transfer, exc)
    return _record_submitted(transfer, already_existed=result.already_existed)


def transfer_submit(*, transfer: MoneyTransfer, client: MtnClient | None = None) -> MoneyTransfer:
    """``transfer_submit_job`` run in this thread (within the account's limits)."""
    return run_inline(transfer_submit_job(transfer=transfer, client=client))


def _record_attempt_error(transfer: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    answer = answer_of(exc)
    after = SUBMISSION_OUTCOMES[(answer, transfer.may_have_landed)]
    if after == Next.FAIL:
        return _record_submit_rejected(transfer, exc)
    if after == Next.ASK_STATUS:
        return _record_ask_status(transfer, exc)
    return _record_submit_retry(transfer, exc, landed=answer == Answer.UNKNOWN)


def _record_submitted(transfer: MoneyTransfer, *, already_existed: bool) -> MoneyTransfer:
    """Mark a queued payment submitted. One conditional UPDATE, no row lock to take first:
    only a payment still ``queued`` changes, so a concurrent recorder cannot double-count.

    This commit need not wait for the disk: if a crash loses it, the payment is still
    ``queued`` and the worker submits it again under the same reference, which MTN answers
    with 409 (already submitted). Nothing is lost or sent twice.
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
        if locked.may_have_landed:
            # Another attempt of this transfer (a stale copy's) may have landed meanwhile.
            return _ask_status_locked(locked, exc)
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


def _record_submit_retry(transfer: MoneyTransfer, exc: MtnError, *, landed: bool) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.QUEUED:
            return locked
        if is_final(locked.status):
            # Settled meanwhile (see above): no retry to schedule, and MTN has it.
            return _mark_submitted_after_settlement(locked)
        locked.submit_attempts += 1
        locked.may_have_landed = locked.may_have_landed or landed
        delay = backoff_delay(locked.submit_attempts, now - locked.created_at)
        if exc.retry_after:
            delay = max(delay, timedelta(seconds=min(exc.retry_after, 300)))
        locked.next_attempt_at = now + delay
        locked.last_error = describe_mtn_error(exc)
        locked.save(
            update_fields=[
                "submit_attempts",
                "may_have_landed",
                "next_attempt_at",
                "last_error",
                "updated_at",
            ]
        )
        _audit_deferred(locked, exc, next_step=Next.RESEND)
    return locked


def _record_ask_status(transfer: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.QUEUED:
            return locked
        if is_final(locked.status):
            return _mark_submitted_after_settlement(locked)
        return _ask_status_locked(locked, exc)


def _ask_status_locked(locked: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    """An error after an attempt that may have landed: MTN's status endpoint decides next."""
    locked.submission = Submission.CHECKING
    locked.submit_attempts += 1
    locked.poll_attempts = 0
    locked.next_attempt_at = timezone.now()
    locked.last_error = describe_mtn_error(exc)
    locked.save(
        update_fields=[
            "submission",
            "submit_attempts",
            "poll_attempts",
            "next_attempt_at",
            "last_error",
            "updated_at",
        ]
    )
    _audit_deferred(locked, exc, next_step=Next.ASK_STATUS)
    return locked


def _audit_deferred(locked: MoneyTransfer, exc: MtnError, *, next_step: Next) -> None:
    assert locked.next_attempt_at is not None  # noqa: S101 - set just before
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
            "may_have_landed": locked.may_have_landed,
            "next": str(next_step),
            "next_attempt_at": locked.next_attempt_at.isoformat(),
        },
    )


# --- after an error that followed an attempt that may have landed --------------------------


def transfer_check_job(
    *, transfer: MoneyTransfer, client: MtnClient | None = None
) -> Job[MoneyTransfer]:
    """Ask MTN's status endpoint about a transfer whose submission's outcome is unknown.

    404 (MTN never received it): queued again as a first attempt, sent under the same
    reference at once. A
    final status is applied (``SUCCESSFUL`` only with our amount and currency); ``PENDING``:
    submitted, polled later. MTN not answering: asked again on the schedule, still PENDING.
    """
    if transfer.submission != Submission.CHECKING or is_final(transfer.status):
        return transfer
    try:
        account = transfer_account(transfer)
    except MtnError as exc:
        return _reschedule_check(transfer, exc)
    call = MtnCall(
        account=account,
        request=partial(_fetch_status, transfer=transfer),
        client=client,
        tenant_id=transfer.tenant_id,
    )
    try:
        mtn_status = yield call
    except MtnNotFoundError:
        return _check_moves_to(transfer, Submission.QUEUED, next_at=timezone.now(), note="404")
    except MtnError as exc:
        return _reschedule_check(transfer, exc)
    if mtn_status.is_final:
        result = transfer_apply_mtn_status(
            transfer=transfer, mtn_status=mtn_status, source="submission-check"
        )
        if result.outcome != Applied.MISMATCH:
            return result.transfer
    poll_at = timezone.now() + timedelta(seconds=settings.MTN_STATUS_POLL_AFTER_SECONDS)
    return _check_moves_to(transfer, Submission.SUBMITTED, next_at=poll_at, note="known")


def _fetch_status(client: MtnClient, *, transfer: MoneyTransfer) -> Any:
    return transfer_fetch_mtn_status(transfer=transfer, client=client)


def _check_moves_to(
    transfer: MoneyTransfer, submission: str, *, next_at: Any, note: str
) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.CHECKING or is_final(locked.status):
            return locked
        locked.submission = submission
        locked.next_attempt_at = next_at
        if submission == Submission.SUBMITTED:
            locked.submitted_at = locked.submitted_at or now
        else:
            # MTN's word: no attempt landed. The resend is a first attempt again, so a
            # refusal of it is final (the contract: FAILED on "never received it").
            locked.may_have_landed = False
        locked.save(
            update_fields=[
                "submission",
                "next_attempt_at",
                "submitted_at",
                "may_have_landed",
                "updated_at",
            ]
        )
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=f"{locked.kind}.submission_checked",
            actor=Actor.system(),
            data={
                "mtn": "never received it" if note == "404" else "has it",
                "next": "resend" if submission == Submission.QUEUED else "poll",
            },
        )
    return locked


def _reschedule_check(transfer: MoneyTransfer, exc: MtnError) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = lock_transfer(transfer)
        if locked.submission != Submission.CHECKING or is_final(locked.status):
            return locked
        locked.poll_attempts += 1
        delay = backoff_delay(locked.poll_attempts, now - locked.created_at)
        if exc.retry_after:
            delay = max(delay, timedelta(seconds=min(exc.retry_after, 300)))
        locked.next_attempt_at = now + delay
        locked.last_error = describe_mtn_error(exc)
        locked.save(update_fields=["poll_attempts", "next_attempt_at", "last_error", "updated_at"])
    return locked
