"""Reconciliation with MTN (contract: When MTN disagrees): ask again, compare, flag.

``reconcile`` asks MTN's status endpoint about every payment, payout and refund that became
final in a window, through the account that carries it, and hands each answer to
``transfer_apply_mtn_status``, which compares and flags a disagreement (a poll, a callback
and the admin's re-check go the same way). It then reads each platform MTN account's wallet
balances and prints them beside the ledger's record of those wallets, with the change of
both since the last run. Every run is stored (``ReconcileRun``); the worker's daily run
(``reconcile_daily``) covers the previous UTC day once, whichever worker gets there first.

Calls are made one at a time and paced at ``RECONCILE_CALLS_PER_SECOND`` per account, well
under MTN's limits, so that a day's reconciliation leaves the account's capacity to live
traffic.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from ledger.models import AccountKind, LedgerAccount
from mtn.accounts import default_account, mtn_client_for
from mtn.calls import PermitTimeout, call_within_limits
from mtn.errors import MtnError, MtnNotFoundError
from mtn.models import MtnAccount
from mtn.values import TransactionStatus
from payments.models import TRANSFER_MODELS, MoneyTransfer, ReconcileRun
from payments.routing import transfer_account
from payments.services.settle import (
    Applied,
    transfer_apply_mtn_status,
    transfer_fetch_mtn_status,
    transfer_flag_for_review,
)
from payments.states import Status

logger = logging.getLogger(__name__)

# The ledger account that records each MTN wallet, and the sign that turns its balance into
# the wallet's view (the collection wallet's account goes negative by what came in).
_WALLET_ACCOUNTS = {
    "collection": (AccountKind.MTN_COLLECTION, Decimal(-1)),
    "disbursement": (AccountKind.MTN_DISBURSEMENT, Decimal(-1)),
}


# How long reconcile waits for a permit of an account busy with the dispatcher's calls before
# it counts the object as not answered (it is asked again at the next run).
PERMIT_WAIT_SECONDS = 30.0


@dataclass
class _Pacer:
    """At most ``per_second`` calls per second to each account (calls are sequential)."""

    per_second: float
    last: dict[str, float] = field(default_factory=dict)

    def wait(self, account: str) -> None:
        if self.per_second <= 0:
            return
        gap = 1.0 / self.per_second
        now = time.monotonic()
        due = self.last.get(account, now - gap) + gap
        if due > now:
            time.sleep(due - now)
        self.last[account] = max(now, due)


def reconcile(
    *,
    since: datetime,
    until: datetime,
    account: str | None = None,
    daily_for: date | None = None,
    out: Callable[[str], None] = lambda line: None,
) -> ReconcileRun | None:
    """Run one reconciliation of ``[since, until)``; ``out`` receives the lines to print.

    Returns the stored run, or None when ``daily_for`` is given and that day's run was
    already taken by another worker.
    """
    try:
        with transaction.atomic():
            run = ReconcileRun.objects.create(
                since=since, until=until, account=account or "", daily_for=daily_for
            )
    except IntegrityError:
        return None
    pacer = _Pacer(settings.RECONCILE_CALLS_PER_SECOND)
    for transfer in _final_in_window(since=since, until=until, account=account):
        pacer.wait(transfer.mtn_account)
        verdict = _check(transfer)
        if verdict == "agrees":
            run.checked += 1
        elif verdict == "unanswered":
            run.unanswered += 1
            out(f"not answered: {transfer.kind} {transfer.pk} ({transfer.mtn_account})")
        else:
            run.checked += 1
            run.disagreements += 1
            current = type(transfer)._default_manager.get(pk=transfer.pk)
            out(
                f"DISAGREES: {transfer.kind} {transfer.pk} ({transfer.mtn_account}): "
                f"{current.review_reason or verdict}"
            )
    run.wallets = _wallets(account=account, out=out)
    run.finished_at = timezone.now()
    run.save()
    out(
        f"reconcile {since.isoformat()} .. {until.isoformat()}: {run.checked} checked, "
        f"{run.disagreements} disagreements (flagged for review), {run.unanswered} not "
        f"answered by MTN, {len(run.wallets)} wallets read"
    )
    logger.info(
        "reconcile: %s checked, %s disagreements, %s not answered",
        run.checked,
        run.disagreements,
        run.unanswered,
        extra={"event": "reconcile.finished"},
    )
    return run


def reconcile_daily(*, now: datetime | None = None) -> ReconcileRun | None:
    """The worker's daily run: at or after ``RECONCILE_HOUR`` (UTC), the previous UTC day,
    once over all workers. None when not due or already done."""
    now = (now or timezone.now()).astimezone(UTC)
    if now.hour < settings.RECONCILE_HOUR:
        return None
    day = now.date() - timedelta(days=1)
    if ReconcileRun.objects.filter(daily_for=day).exists():
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return reconcile(
        since=start,
        until=start + timedelta(days=1),
        daily_for=day,
        out=lambda line: logger.warning("reconcile: %s", line)
        if "DISAGREES" in line
        else logger.info("reconcile: %s", line),
    )


def default_since() -> datetime:
    """Where the last run ended, or a day ago when none ran."""
    last = ReconcileRun.objects.filter(finished_at__isnull=False).order_by("-until").first()
    return last.until if last is not None else timezone.now() - timedelta(days=1)


def _final_in_window(
    *, since: datetime, until: datetime, account: str | None
) -> Iterator[MoneyTransfer]:
    for model in TRANSFER_MODELS.values():
        rows = model._default_manager.filter(finalized_at__gte=since, finalized_at__lt=until)
        if account:
            rows = rows.filter(mtn_account=account)
        yield from rows.select_related("tenant").order_by("finalized_at", "pk").iterator(500)


def _check(transfer: MoneyTransfer) -> str:
    """Ask MTN about one final transfer and compare: ``agrees``, ``unanswered``, or the
    outcome that flagged it."""
    try:
        # Within the account's limits, like every other call to it (Capacity).
        mtn_status = call_within_limits(
            transfer_account(transfer),
            lambda: transfer_fetch_mtn_status(transfer=transfer),
            wait_up_to=PERMIT_WAIT_SECONDS,
        )
    except PermitTimeout:
        return "unanswered"
    except MtnNotFoundError as exc:
        if transfer.status == Status.FAILED:
            return "agrees"  # MTN never received it: FAILED is right
        # We hold it SUCCESSFUL, and MTN has no record of it at all.
        never = TransactionStatus(
            status=Status.FAILED,
            raw_status=None,
            amount=None,
            currency=None,
            external_id=None,
            financial_transaction_id=None,
            party_id=None,
            reason_code=exc.code,
            reason_message="MTN's status endpoint does not know this reference.",
            raw={"http_status": exc.status_code, "code": exc.code, "message": exc.message},
        )
        transfer_flag_for_review(
            transfer=transfer, problems=["not_found"], source="reconcile", mtn_status=never
        )
        return Applied.CONTRADICTED
    except MtnError:
        return "unanswered"
    if not mtn_status.is_final:
        return "unanswered"
    result = transfer_apply_mtn_status(transfer=transfer, mtn_status=mtn_status, source="reconcile")
    if result.outcome in (Applied.MISMATCH, Applied.CONTRADICTED):
        return str(result.outcome)
    return "agrees"


def _platform_accounts(account: str | None) -> list[MtnAccount]:
    accounts = [default_account(), *MtnAccount.objects.filter(tenant__isnull=True)]
    return [a for a in accounts if account is None or a.name == account]


def _ledger_wallet(kind: AccountKind, sign: Decimal, currency: str) -> Decimal:
    """The ledger's record of the platform's wallet: the sum of the account's stripes."""
    total = LedgerAccount.objects.filter(
        tenant_id__isnull=True, kind=kind, currency=currency
    ).aggregate(total=Sum("balance"))["total"]
    return sign * Decimal(str(total or 0))


def _wallets(*, account: str | None, out: Callable[[str], None]) -> list[dict[str, Any]]:
    previous = (
        ReconcileRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    )
    before = {
        (w["account"], w["product"], w.get("currency")): w
        for w in (previous.wallets if previous else [])
        if "mtn" in w
    }
    wallets: list[dict[str, Any]] = []
    for mtn_account in _platform_accounts(account):
        for product, (kind, sign) in _WALLET_ACCOUNTS.items():
            if not mtn_account.is_default and not mtn_account.has_product(product):
                continue
            try:
                balance = call_within_limits(
                    mtn_account,
                    functools.partial(
                        mtn_client_for(mtn_account).account_balance, product=product, retry=False
                    ),
                    wait_up_to=PERMIT_WAIT_SECONDS,
                )
            except PermitTimeout:
                out(f"wallet {mtn_account.name} {product}: MTN could not be asked (ACCOUNT_BUSY)")
                wallets.append(
                    {"account": mtn_account.name, "product": product, "error": "ACCOUNT_BUSY"}
                )
                continue
            except MtnError as exc:
                out(f"wallet {mtn_account.name} {product}: MTN could not be asked ({exc.code})")
                wallets.append({"account": mtn_account.name, "product": product, "error": exc.code})
                continue
            ledger = _ledger_wallet(kind, sign, balance.currency)
            row = {
                "account": mtn_account.name,
                "product": product,
                "currency": balance.currency,
                "mtn": str(balance.available),
                "ledger": str(ledger),
            }
            last = before.get((mtn_account.name, product, balance.currency))
            change = ""
            if last is not None:
                mtn_change = balance.available - Decimal(last["mtn"])
                ledger_change = ledger - Decimal(last["ledger"])
                row["mtn_change"], row["ledger_change"] = str(mtn_change), str(ledger_change)
                change = f"; since the last run: MTN {mtn_change:+}, ledger {ledger_change:+}"
            out(
                f"wallet {mtn_account.name} {product} {balance.currency}: MTN "
                f"{balance.available}, ledger {ledger}{change}"
            )
            wallets.append(row)
    return wallets
