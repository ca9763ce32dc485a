"""MTN callbacks: store as received, confirm with MTN, apply through the state machine.

MTN signs nothing (reference section 8), so a callback is a hint: the per-payment door is
always confirmed with MTN's status endpoint, and the signed door too unless
``MTN_VERIFY_CALLBACKS`` is off. The request only stores it, due now, and wakes the
dispatcher (``run_worker``), which confirms and applies it (``callback_confirm_job``): MTN
gives up on our answer after about two seconds, and a slow MTN must not make the gateway miss
MTN's own callbacks. When MTN cannot be asked, the confirmation is tried again on the
schedule.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gateway import metrics
from gateway.parsers import loads_strict
from gateway.sql import dispatcher_wake
from mtn.calls import Job, MtnCall, run_inline
from mtn.client import MtnClient, TransactionStatus, parse_transaction_status
from mtn.errors import MtnError
from payments.models import TRANSFER_MODELS, MoneyTransfer
from payments.schedule import backoff_delay
from payments.services import (
    Applied,
    transfer_account,
    transfer_apply_mtn_status,
    transfer_fetch_mtn_status,
    transfer_flag_for_review,
    transfer_mismatch,
)
from payments.states import is_final
from webhooks.models import MtnCallback

logger = logging.getLogger(__name__)

Outcome = MtnCallback.Outcome

# Headers worth keeping for support; never the whole environment.
_KEPT_HEADERS = (
    "Content-Type",
    "Content-Length",
    "User-Agent",
    "X-Signature-256",
    "X-Forwarded-For",
    "X-Request-ID",
)

_APPLY_OUTCOMES = {
    Applied.APPLIED: Outcome.APPLIED,
    Applied.UNCHANGED: Outcome.DUPLICATE,
    Applied.CONTRADICTED: Outcome.CONTRADICTED,
    Applied.MISMATCH: Outcome.MISMATCH,
    Applied.NOT_FINAL: Outcome.NOT_FINAL,
}


# A SUCCESSFUL without a readable amount or currency is not a difference a callback can prove
# on its own: MTN's status endpoint (or, with verification off, applying it) decides.
_MISSING = frozenset({"amount_missing", "currency_missing"})


def _differences(transfer: MoneyTransfer, reported: TransactionStatus) -> list[str]:
    """What the callback reports differently from our record (amount, currency, party,
    externalId), leaving out what it merely lacks."""
    return [p for p in transfer_mismatch(transfer, reported) if p not in _MISSING]


def transfer_by_token(token: str) -> MoneyTransfer | None:
    """The payment, payout or refund whose callback URL carries ``token``, or None."""
    if not token or len(token) > 64 or "\x00" in token:
        return None
    for model in TRANSFER_MODELS.values():
        found = model.objects.select_related("tenant").filter(callback_token=token).first()
        if found is not None:
            return found
    return None


def transfer_by_external_id(external_id: Any) -> MoneyTransfer | None:
    """The payment, payout or refund whose id MTN echoes as ``externalId``, or None."""
    try:
        transfer_id = uuid.UUID(str(external_id))
    except ValueError:
        return None
    for model in TRANSFER_MODELS.values():
        found = model.objects.select_related("tenant").filter(pk=transfer_id).first()
        if found is not None:
            return found
    return None


def callback_receive(
    *,
    door: str,
    method: str,
    raw_body: bytes,
    headers: Any,
    remote_addr: str,
    transfer: MoneyTransfer | None = None,
) -> MtnCallback:
    """Store a callback as received, due for the dispatcher. Raises ``MalformedJson`` first.

    On the signed door the signature has been checked by the caller and the payment is
    found by ``externalId``; on the per-payment door the caller found it by token. No MTN
    call here: the dispatcher confirms and applies it (``callback_confirm_job``).
    """
    body = loads_strict(raw_body)
    if door == MtnCallback.Door.SIGNED and isinstance(body, dict):
        transfer = transfer_by_external_id(body.get("externalId"))
    reported = parse_transaction_status(body) if isinstance(body, dict) else None
    settled = _settled_without_work(transfer, reported)
    callback = MtnCallback.objects.create(
        door=door,
        method=method,
        headers={name: headers[name][:500] for name in _KEPT_HEADERS if name in headers},
        raw_body=raw_body.decode("utf-8", errors="replace"),
        remote_addr=remote_addr[:64],
        signature_valid=True if door == MtnCallback.Door.SIGNED else None,
        object_type=transfer.kind if transfer else "",
        object_id=transfer.pk if transfer else None,
        tenant=transfer.tenant if transfer else None,
        reported_status=(reported.raw_status or "")[:32] if reported else "",
        # Repeats and strays (most callbacks MTN retries) are stored with their outcome in one
        # write; the rest are stored first, then confirmed and applied.
        outcome=settled[0] if settled else Outcome.RECEIVED,
        outcome_detail=settled[1] if settled else "",
        processed_at=timezone.now() if settled else None,
        # Due for the dispatcher now; processing clears it.
        next_attempt_at=None if settled else timezone.now(),
    )
    if settled:
        metrics.callback_processed(door=callback.door, outcome=callback.outcome)
    else:
        dispatcher_wake()
    return callback


def _settled_without_work(
    transfer: MoneyTransfer | None, reported: TransactionStatus | None
) -> tuple[str, str] | None:
    """The outcome of a callback that needs neither MTN nor a write to the payment, if so."""
    if transfer is None:
        return Outcome.UNMATCHED, "No payment, payout or refund has this externalId."
    if reported is None:
        return Outcome.NOT_FINAL, "The body is not a JSON object."
    if is_final(transfer.status):
        if not reported.is_final:  # a stale PENDING after the end: nothing to compare
            return Outcome.FINAL_ALREADY, f"The {transfer.kind} is already {transfer.status}."
        if reported.status == transfer.status and not _differences(transfer, reported):
            return Outcome.DUPLICATE, f"The {transfer.kind} is already {transfer.status}."
        # A callback that contradicts a final object: confirmed with MTN and compared (When
        # MTN disagrees), never dropped.
        return None
    if not reported.is_final and not _differences(transfer, reported):
        return Outcome.NOT_FINAL, f"MTN reported {reported.raw_status!r}."
    return None


def callback_process_job(
    *,
    callback: MtnCallback,
    transfer: MoneyTransfer | None,
    reported: TransactionStatus | None,
    client: MtnClient | None = None,
) -> Job[MtnCallback]:
    """Decide and record what a stored callback does: a job (``mtn.calls``) whose one MTN call
    is the confirmation. Safe to run again.

    ``transfer`` must be freshly read: its status decides whether there is anything to do.
    """
    settled = _settled_without_work(transfer, reported)
    if settled:
        return _finish(callback, *settled)
    assert transfer is not None  # noqa: S101 - _settled_without_work settles a missing one
    assert reported is not None  # noqa: S101 - likewise
    problems = _differences(transfer, reported)
    if problems:
        transfer_flag_for_review(
            transfer=transfer, problems=problems, source="callback", mtn_status=reported
        )
        return _finish(
            callback, Outcome.MISMATCH, f"Differs from our record: {', '.join(problems)}."
        )
    if not reported.is_final:
        return _finish(callback, Outcome.NOT_FINAL, f"MTN reported {reported.raw_status!r}.")

    must_confirm = callback.door == MtnCallback.Door.TOKEN or settings.MTN_VERIFY_CALLBACKS
    if not must_confirm:
        result = transfer_apply_mtn_status(
            transfer=transfer, mtn_status=reported, source=f"callback:{callback.door}"
        )
        return _finish(callback, _APPLY_OUTCOMES[result.outcome], "", confirmed="")

    try:
        # Asked of the MTN account that carries the transfer: only that one knows it.
        account = transfer_account(transfer)
        confirmed = yield MtnCall(
            account=account,
            request=partial(_status_of, transfer=transfer),
            client=client,
            tenant_id=transfer.tenant_id,
        )
    except MtnError as exc:
        return _defer(callback, f"MTN could not be asked: {exc.code}")
    if not confirmed.is_final or confirmed.status != reported.status:
        # MTN's own record wins. If it is final, apply it (as a poll would); either way the
        # callback's claim was not confirmed.
        if confirmed.is_final:
            transfer_apply_mtn_status(
                transfer=transfer, mtn_status=confirmed, source="callback-confirmation"
            )
        return _finish(
            callback,
            Outcome.UNCONFIRMED,
            f"Callback said {reported.status}; MTN's status endpoint says {confirmed.status}.",
            confirmed=confirmed.raw_status or confirmed.status,
        )
    result = transfer_apply_mtn_status(
        transfer=transfer, mtn_status=confirmed, source=f"callback:{callback.door}"
    )
    return _finish(
        callback,
        _APPLY_OUTCOMES[result.outcome],
        "Confirmed by MTN's status endpoint.",
        confirmed=confirmed.raw_status or confirmed.status,
    )


def _status_of(client: MtnClient, *, transfer: MoneyTransfer) -> TransactionStatus:
    return transfer_fetch_mtn_status(transfer=transfer, client=client)


def callback_confirm_job(
    *, callback: MtnCallback, client: MtnClient | None = None
) -> Job[MtnCallback]:
    """The dispatcher's work on a stored callback: read it and its transfer afresh, confirm
    with MTN, apply."""
    transfer = None
    if callback.object_id is not None:
        model = TRANSFER_MODELS[callback.object_type]
        transfer = model.objects.select_related("tenant").filter(pk=callback.object_id).first()
    try:
        body = loads_strict(callback.raw_body.encode("utf-8"))
    except Exception:  # noqa: BLE001 - it parsed when received; be safe on odd stored text
        body = None
    reported = parse_transaction_status(body) if isinstance(body, dict) else None
    return (
        yield from callback_process_job(
            callback=callback, transfer=transfer, reported=reported, client=client
        )
    )


def callback_confirm(*, callback: MtnCallback, client: MtnClient | None = None) -> MtnCallback:
    """``callback_confirm_job`` run in this thread (within the account's limits)."""
    return run_inline(callback_confirm_job(callback=callback, client=client))


def _finish(callback: MtnCallback, outcome: str, detail: str, confirmed: str = "") -> MtnCallback:
    metrics.callback_processed(door=callback.door, outcome=outcome)
    callback.outcome = outcome
    callback.outcome_detail = detail[:500]
    callback.confirmed_status = confirmed[:32]
    callback.processed_at = timezone.now()
    callback.next_attempt_at = None
    callback.save(
        update_fields=[
            "outcome",
            "outcome_detail",
            "confirmed_status",
            "processed_at",
            "next_attempt_at",
        ]
    )
    return callback


def _defer(callback: MtnCallback, detail: str) -> MtnCallback:
    metrics.callback_processed(door=callback.door, outcome=Outcome.DEFERRED)
    now = timezone.now()
    with transaction.atomic():
        callback.confirm_attempts += 1
        callback.outcome = Outcome.DEFERRED
        callback.outcome_detail = detail[:500]
        callback.next_attempt_at = now + backoff_delay(
            callback.confirm_attempts, now - callback.received_at
        )
        callback.save(
            update_fields=["confirm_attempts", "outcome", "outcome_detail", "next_attempt_at"]
        )
    return callback
