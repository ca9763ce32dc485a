"""The background worker: reconcilers over rows that say what is due and when.

Each kind of work is a table with a ``next_attempt_at`` column. A worker claims due rows
in a short transaction with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and moves
their ``next_attempt_at`` a lease ahead, so that no other worker takes them while they
are worked; the work then records the real next time (or none). A worker that dies
simply lets its leases run out: nothing lives only in memory.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections, models, transaction
from django.utils import timezone

from gateway.errors import is_database_unavailable
from gateway.idempotency import idempotency_keys_purge
from gateway.logging import log_context
from payments.models import Payment, Payout, Refund
from payments.services import transfer_poll, transfer_submit
from payments.services.reconcile import reconcile_daily
from payments.states import Submission
from webhooks.delivery import delivery_attempt
from webhooks.inbound import callback_confirm_deferred
from webhooks.models import MerchantDelivery, MtnCallback

logger = logging.getLogger("shell.worker")

# Longer than any single piece of work (an MTN call or a webhook POST with its timeouts).
LEASE = timedelta(seconds=60)
BATCH_SIZE = 20
PURGE_EVERY = timedelta(minutes=10)
RECONCILE_CHECK_EVERY = timedelta(minutes=5)
# While the database cannot be reached: wait this long after the first failed round, twice as
# long after each further one, never more than the cap (so recovery is noticed soon).
OUTAGE_FIRST_WAIT = 0.5
OUTAGE_MAX_WAIT = 10.0


def claim_due(model: type[models.Model], *, now: Any, limit: int = BATCH_SIZE) -> list[Any]:
    """Claim up to ``limit`` due rows of ``model`` for this worker; returns them."""
    with transaction.atomic():
        ids = list(
            model.objects.filter(next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        model.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
    return list(model.objects.filter(pk__in=ids))


def _payment_id_of(row: Any) -> Any:
    """The payment, payout or refund a piece of work concerns, for the log lines it writes."""
    if isinstance(row, Payment | Payout | Refund):
        return row.pk
    return getattr(row, "object_id", None)


def _work_transfer(transfer: Any) -> str:
    if transfer.submission == Submission.QUEUED:
        # One attempt: the worker's own schedule is the retry policy here.
        transfer_submit(transfer=transfer, retry=False)
        return "submitted"
    transfer_poll(transfer=transfer)
    return "polled"


@dataclass
class Worker:
    stop_event: threading.Event = field(default_factory=threading.Event)
    last_purge_at: Any = None
    last_reconcile_check_at: Any = None

    def run_once(self) -> dict[str, int]:
        """Work every kind of due row once; returns counts by kind of work."""
        now = timezone.now()
        counts: dict[str, int] = {}
        jobs: Iterable[tuple[str, type[models.Model], Callable[[Any], str]]] = (
            ("payment", Payment, _work_transfer),
            ("payout", Payout, _work_transfer),
            ("refund", Refund, _work_transfer),
            ("callback", MtnCallback, self._confirm_callback),
            ("webhook", MerchantDelivery, self._deliver),
        )
        for name, model, work in jobs:
            for row in claim_due(model, now=now):
                if self.stop_event.is_set():
                    return counts
                try:
                    with log_context(payment_id=_payment_id_of(row)):
                        action = work(row)
                except Exception as exc:
                    if is_database_unavailable(exc):
                        # Every other row would fail the same way: end the round. This one's
                        # lease runs out and it is retried; its work is safe to do twice.
                        raise
                    # One bad row must not stop the others; its lease expires and it is retried.
                    logger.exception("worker: %s %s failed", name, row.pk)
                    action = "error"
                key = f"{name}.{action}"
                counts[key] = counts.get(key, 0) + 1
        if self.last_purge_at is None or now - self.last_purge_at >= PURGE_EVERY:
            purged = idempotency_keys_purge(now=now)
            self.last_purge_at = now
            if purged:
                counts["idempotency_keys.purged"] = purged
        return counts

    def _reconcile_if_due(self, now: Any) -> None:
        """The daily ``reconcile`` of the previous UTC day at ``RECONCILE_HOUR``, once over all
        workers (``reconcile_daily`` decides); looked at every few minutes, not every round.
        Only the long-running worker does it: ``--once`` is for work due now."""
        if (
            self.last_reconcile_check_at
            and now - self.last_reconcile_check_at < RECONCILE_CHECK_EVERY
        ):
            return
        self.last_reconcile_check_at = now
        reconcile_daily(now=now)

    @staticmethod
    def _confirm_callback(callback: MtnCallback) -> str:
        return f"confirmed_{callback_confirm_deferred(callback=callback).outcome}"

    @staticmethod
    def _deliver(delivery: MerchantDelivery) -> str:
        return f"delivered_{delivery_attempt(delivery=delivery).state}"

    def drain(self, max_rounds: int = 100) -> dict[str, int]:
        """Work until nothing is due now (``--once``)."""
        totals: dict[str, int] = {}
        for _ in range(max_rounds):
            counts = self.run_once()
            for key, value in counts.items():
                if key != "idempotency_keys.purged" or value:
                    totals[key] = totals.get(key, 0) + value
            if not any(k for k in counts if k != "idempotency_keys.purged"):
                break
        return totals

    def run_forever(self, idle_sleep: float = 1.0) -> None:
        logger.info("worker started")
        outage_wait = 0.0  # > 0 while the database cannot be reached
        while not self.stop_event.is_set():
            close_old_connections()
            try:
                counts = self.run_once()
                if not self.stop_event.is_set():
                    self._reconcile_if_due(timezone.now())
            except Exception as exc:
                if not is_database_unavailable(exc):
                    logger.exception("worker: round failed; retrying shortly")
                    counts = {}
                else:
                    outage_wait = self._database_unavailable(exc, outage_wait)
                    self.stop_event.wait(outage_wait)
                    continue
            if outage_wait:
                logger.info(
                    "worker: the database answers again; carrying on",
                    extra={"event": "worker.database_available"},
                )
                outage_wait = 0.0
            if counts:
                logger.info("worker: %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            else:
                self.stop_event.wait(idle_sleep)
        logger.info("worker stopped")

    @staticmethod
    def _database_unavailable(exc: BaseException, waited: float) -> float:
        """Log the outage (when it starts, then once per ``OUTAGE_MAX_WAIT``), drop the broken
        connection, and return how long to wait before the next round."""
        wait = min(waited * 2, OUTAGE_MAX_WAIT) if waited else OUTAGE_FIRST_WAIT
        if not waited or wait == OUTAGE_MAX_WAIT:
            logger.warning(
                "worker: the database cannot be reached (%s: %s); retrying in %.1fs",
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                wait,
                extra={"event": "worker.database_unavailable"},
            )
        # A connection that failed is useless even if the server comes back: drop it now, so
        # the next round opens a fresh one (close_old_connections would, at its next call).
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
        return wait

    def install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            logger.info("worker: signal %s received, finishing the current piece of work", signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
