"""Writes for payments and payouts: create, submit to MTN, poll, and the one status writer.

Guarantees, in the words of ``architecture.md``:
- a payment exists (with its MTN reference) before anything is sent to MTN;
- MTN is only ever asked under that one reference, so a retry can never charge twice;
- ``transfer_transition`` is the only code that changes ``status``; it locks the row,
  treats a repeat as a no-op, refuses what the state table forbids, records an audit
  event and writes the merchant webhook into the outbox, all in one transaction;
- no network call is made while a row lock is held.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from gateway.audit import Actor, audit_event, audit_record
from gateway.db import commit_without_waiting_for_disk
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
from mtn.client import MtnClient, MtnConfig, SubmitResult, TransactionStatus
from mtn.errors import MtnError, MtnNotFoundError
from payments.errors import InvalidTransition
from payments.models import MoneyTransfer
from payments.money import format_amount, same_amount
from payments.representation import transfer_representation
from payments.schedule import backoff_delay
from payments.states import Status, Submission, can_transition, is_final
from webhooks.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

_client_local = threading.local()


def mtn_client(*, quick: bool = False) -> MtnClient:
    """One MTN client (and HTTP connection pool) per thread and configuration.

    ``quick`` gives short timeouts, for calls made while MTN waits on our answer to its
    callback (it gives up after about 2 seconds).
    """
    config = MtnConfig.from_settings()
    if quick:
        config = dataclasses.replace(config, connect_timeout=1.0, read_timeout=1.5)
    clients = getattr(_client_local, "clients", None)
    if clients is None:
        clients = _client_local.clients = {}
    client = clients.get(config)
    if client is None:
        client = clients[config] = MtnClient(config)
    return client


def in_request_lease() -> timedelta:
    """How long the web request that created a payment owns its first submission.

    The worker leaves the payment alone for this long, so that it does not race the request;
    if the request's process dies, the worker picks the payment up when the lease ends.
    """
    return timedelta(
        seconds=settings.MTN_SUBMIT_MAX_SECONDS
        + settings.MTN_CONNECT_TIMEOUT
        + settings.MTN_READ_TIMEOUT
        + 5
    )


def callback_url_for(transfer: MoneyTransfer) -> str | None:
    if not settings.MTN_CALLBACK_URL:
        return None
    return f"{settings.MTN_CALLBACK_URL}/api/v1/webhooks/mtn/{transfer.callback_token}"


# --- create ---------------------------------------------------------------------------------


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


# --- submit ---------------------------------------------------------------------------------


def _send(client: MtnClient, transfer: MoneyTransfer, *, retry: bool) -> SubmitResult:
    common = {
        "reference_id": transfer.mtn_reference_id,
        "amount": format_amount(transfer.amount, transfer.currency),
        "currency": transfer.currency,
        "external_id": str(transfer.id),
        "payer_message": transfer.description,
        "payee_note": transfer.description,
        "callback_url": callback_url_for(transfer),
        "retry": retry,
    }
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
    stores its idempotent answer there).
    """
    if transfer.submission != Submission.QUEUED or is_final(transfer.status):
        return transfer
    client = client or mtn_client()
    try:
        result = _send(client, transfer, retry=retry)
    except MtnError as exc:
        if exc.retryable:
            return _record_submit_retry(transfer, exc)
        return _record_submit_rejected(transfer, exc)
    return _record_submitted(
        transfer, already_existed=result.already_existed, also=also_when_submitted
    )


def _lock(transfer: MoneyTransfer) -> MoneyTransfer:
    return (
        type(transfer)
        .objects.select_related("tenant")
        .select_for_update(of=("self",))
        .get(pk=transfer.pk)
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
        changed = model.objects.filter(pk=transfer.pk, submission=Submission.QUEUED).update(
            submission=Submission.SUBMITTED,
            submitted_at=now,
            submit_attempts=F("submit_attempts") + 1,
            last_error="",
            # A callback may already have made it final (which cleared next_attempt_at).
            next_attempt_at=Case(When(status=Status.PENDING, then=Value(poll_at)), default=None),
            updated_at=now,
        )
        if not changed:
            return model.objects.select_related("tenant").get(pk=transfer.pk)
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
        locked = _lock(transfer)
        if locked.submission != Submission.QUEUED:
            return locked
        if is_final(locked.status):
            # An earlier try landed and MTN's (confirmed) word settled it while this one was
            # in flight: MTN has the transaction, whatever this late answer says.
            return _mark_submitted_after_settlement(locked)
        locked.submission = Submission.REJECTED
        locked.submit_attempts += 1
        locked.last_error = _describe(exc)
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
        locked = _lock(transfer)
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
        locked.last_error = _describe(exc)
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


# --- poll -----------------------------------------------------------------------------------


def transfer_fetch_mtn_status(
    *, transfer: MoneyTransfer, client: MtnClient | None = None
) -> TransactionStatus:
    """Ask MTN's status endpoint (one attempt); raises ``MtnError``."""
    client = client or mtn_client()
    if transfer.kind == "payment":
        return client.request_to_pay_status(reference_id=transfer.mtn_reference_id, retry=False)
    return client.transfer_status(reference_id=transfer.mtn_reference_id, retry=False)


def transfer_poll(*, transfer: MoneyTransfer, client: MtnClient | None = None) -> MoneyTransfer:
    """Poll MTN for a submitted, still-pending payment; apply a final status or reschedule."""
    if transfer.submission != Submission.SUBMITTED or is_final(transfer.status):
        return transfer
    try:
        mtn_status = transfer_fetch_mtn_status(transfer=transfer, client=client)
    except MtnNotFoundError as exc:
        # Right after a 202 MTN may briefly not know the reference yet: poll again later.
        return _reschedule_poll(transfer, error=_describe(exc))
    except MtnError as exc:
        return _reschedule_poll(transfer, error=_describe(exc), retry_after=exc.retry_after)
    if mtn_status.is_final:
        result = transfer_apply_mtn_status(transfer=transfer, mtn_status=mtn_status, source="poll")
        if result.outcome != Applied.MISMATCH:
            return result.transfer
        # A mismatch stays pending for a person to look at; keep polling, slowly.
        return _reschedule_poll(result.transfer, error="MTN's record differs from ours")
    return _reschedule_poll(transfer, error="")


def _reschedule_poll(
    transfer: MoneyTransfer, *, error: str, retry_after: float | None = None
) -> MoneyTransfer:
    now = timezone.now()
    with transaction.atomic():
        locked = _lock(transfer)
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


def transfer_recheck(*, transfer: MoneyTransfer, actor: Actor) -> ApplyResult:
    """Support's "re-check with MTN": ask the status endpoint now and apply a final answer.

    Recorded in the audit trail whatever MTN says. Raises ``MtnError`` when MTN cannot be
    asked or does not know the reference (``MtnNotFoundError``); nothing changes then.
    """
    try:
        mtn_status = transfer_fetch_mtn_status(transfer=transfer)
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
    """Which of amount, currency, party and externalId MTN reports differently."""
    problems = []
    if mtn_status.amount is not None and not same_amount(mtn_status.amount, transfer.amount):
        problems.append("amount")
    if mtn_status.currency and mtn_status.currency != transfer.currency:
        problems.append("currency")
    if mtn_status.party_id and mtn_status.party_id != transfer.party:
        problems.append(transfer.party_field)
    if mtn_status.external_id and mtn_status.external_id != str(transfer.id):
        problems.append("externalId")
    return problems


class Applied(models.TextChoices):
    """What applying MTN's word to a payment did."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # already in that status: a repeat
    FINAL_ALREADY = "final_already"  # already final with the other status: ignored
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

    A status whose amount, currency, party or externalId differs from ours is not applied;
    the payment is flagged for review instead. A non-final status, a repeat, or a
    contradiction of a final state changes nothing.
    """
    if not mtn_status.is_final:
        return ApplyResult(transfer, Applied.NOT_FINAL)
    problems = transfer_mismatch(transfer, mtn_status)
    if problems:
        flagged = transfer_flag_for_review(transfer=transfer, problems=problems, source=source)
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
        current = type(transfer).objects.get(pk=transfer.pk)
        return ApplyResult(current, Applied.FINAL_ALREADY)
    return ApplyResult(
        transition.transfer, Applied.APPLIED if transition.changed else Applied.UNCHANGED
    )


def transfer_flag_for_review(
    *, transfer: MoneyTransfer, problems: list[str], source: str
) -> MoneyTransfer:
    with transaction.atomic():
        locked = _lock(transfer)
        if not locked.needs_review:
            locked.needs_review = True
            locked.save(update_fields=["needs_review", "updated_at"])
        audit_record(
            tenant=locked.tenant,
            object_type=locked.kind,
            object_id=locked.pk,
            action=f"{locked.kind}.flagged_for_review",
            actor=Actor.system(),
            data={"mismatch": problems, "source": source},
        )
    return locked


# --- the one status writer ------------------------------------------------------------------

_EVENT_NAMES = {Status.SUCCESSFUL: "succeeded", Status.FAILED: "failed"}


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
    """Move a payment or payout to ``target``: the only code that writes ``status``.

    Locks the row; a repeat of the current status is a no-op; a transition the state table
    forbids raises ``InvalidTransition`` and changes nothing. On reaching a final state it
    records the audit event and writes the merchant webhook into the outbox in the same
    transaction.
    """
    with transaction.atomic():
        locked = _lock(transfer)
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
        if is_final(target) and locked.submission == Submission.QUEUED:
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
            outbox_enqueue(
                tenant=locked.tenant,
                event_type=event_name,
                object_type=locked.kind,
                object_id=locked.pk,
                data=transfer_representation(locked),
            )
    logger.info(
        "%s %s",
        locked.kind,
        target,
        extra={"event": event_name, "tenant": locked.tenant.slug, "payment_id": locked.pk},
    )
    return Transition(locked, changed=True)


def _describe(exc: MtnError) -> str:
    status = f" (HTTP {exc.status_code})" if exc.status_code else ""
    return f"{exc.code}{status}: {exc.message}"[:500]
