"""The background worker: a dispatcher for MTN work, and reconcilers over rows.

Each kind of work is a table with a ``next_attempt_at`` column. The dispatcher claims due
rows (payments, payouts and refunds to submit, check or poll; callbacks to confirm) in short
transactions with ``SELECT ... FOR UPDATE SKIP LOCKED``, moving their ``next_attempt_at`` a
lease ahead so that no other worker takes them, and lets go of the database. Each row's work
is a job (``mtn.calls``): its database parts run on this process's main thread, each MTN
call on a pool thread once the account's limits (``mtn.limits``, shared by every process)
give it a permit, so that many calls are in flight and no connection or transaction is held
while MTN answers. Each outcome is recorded in its own short transaction, which sets the
real next time (or none). A worker that dies simply lets its leases run out: nothing lives
only in memory, and a resend under the same MTN reference is answered 409 by MTN.

Rows are claimed only as far as they can be sent soon (what the account's limits allow in
about a second, besides what is in flight), round-robin between tenants, so that one
tenant's burst (a payout batch) does not delay another tenant's single payment.

On PostgreSQL the dispatcher sleeps on ``LISTEN`` (creates and callbacks ``NOTIFY`` at
commit) and wakes at least every ``DISPATCH_POLL_SECONDS`` for work that fell due by time;
on SQLite it polls. Merchant webhook deliveries and the purge of expired idempotency keys
run on a thread of their own (their HTTP calls are the merchants', not MTN's).
"""

from __future__ import annotations

import logging
import math
import queue
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, connections, models, transaction
from django.utils import timezone

from gateway.errors import is_database_unavailable
from gateway.idempotency import idempotency_keys_purge
from gateway.logging import log_context
from gateway.sql import DISPATCH_CHANNEL
from mtn.accounts import MtnAccountNotFound, mtn_account_get
from mtn.calls import Done, Job, MtnCall, call_outcome, job_send, job_start
from mtn.limits import AccountLimits, account_limits, permit_try_acquire, permit_wait_hint
from payments.models import MoneyTransfer, Payment, Payout, Refund
from payments.services.reconcile import reconcile_daily
from payments.services.settle import transfer_poll_job
from payments.services.submit import transfer_check_job, transfer_submit_job
from payments.states import Submission
from webhooks.delivery import delivery_attempt
from webhooks.inbound import callback_confirm_job
from webhooks.models import MerchantDelivery, MtnCallback

logger = logging.getLogger("shell.worker")

# Longer than any single piece of work (an MTN call or a webhook POST with its timeouts, and
# the short wait for a permit that claiming only what can be sent soon leaves).
LEASE = timedelta(seconds=60)
BATCH_SIZE = 20
# Rows a claim looks at per query, and how many queries it makes to find other tenants'
# rows behind one tenant's backlog.
CANDIDATES = 200
MAX_TENANT_QUERIES = 8
# Claimed, besides the calls in flight: what the account's rate allows in this long.
BUFFER_SECONDS = 1.0
# While there is work, the dispatcher claims again this soon (budgets free up as calls end),
# so that another tenant's payment behind one tenant's burst waits no longer than this.
CLAIM_AGAIN_SECONDS = 0.05
# A claimed row that waited this long for a permit (MTN's 429 slowed its account down) is
# given back, well before its lease ends.
GIVE_BACK_AFTER = LEASE / 2
PURGE_EVERY = timedelta(minutes=10)
RECONCILE_CHECK_EVERY = timedelta(minutes=5)
# While the database cannot be reached: wait this long after the first failed round, twice as
# long after each further one, never more than the cap (so recovery is noticed soon).
OUTAGE_FIRST_WAIT = 0.5
OUTAGE_MAX_WAIT = 10.0

TRANSFER_KINDS: tuple[tuple[str, type[MoneyTransfer]], ...] = (
    ("payment", Payment),
    ("payout", Payout),
    ("refund", Refund),
)


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


def claim_transfers(
    model: type[MoneyTransfer], *, now: Any, budget: dict[str, int] | Any
) -> list[MoneyTransfer]:
    """Claim due transfers of ``model``: per MTN account at most ``budget(account)``,
    round-robin between tenants; returns them, leased.

    The first query takes the oldest due rows; while it comes back full (a backlog), the
    next ones skip the tenants already seen, so every tenant with due work is a candidate.
    Candidates not chosen are only locked until the commit, never written.
    """
    with transaction.atomic():
        candidates: list[tuple[Any, Any, str]] = []
        seen: set[Any] = set()
        for _ in range(MAX_TENANT_QUERIES):
            rows = list(
                model._default_manager.filter(next_attempt_at__lte=now)
                .exclude(tenant_id__in=seen)
                .order_by("next_attempt_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", "tenant_id", "mtn_account")[:CANDIDATES]
            )
            candidates.extend(rows)
            if len(rows) < CANDIDATES:
                break
            seen.update(tenant for _, tenant, _ in rows)
        chosen = _round_robin(candidates, budget)
        if not chosen:
            return []
        model._default_manager.filter(pk__in=chosen).update(next_attempt_at=now + LEASE)
    related = ("tenant", "payment") if model is Refund else ("tenant",)
    return list(model._default_manager.select_related(*related).filter(pk__in=chosen))


def _round_robin(candidates: Iterable[tuple[Any, Any, str]], budget: Any) -> list[Any]:
    """Up to ``budget(account)`` ids per account, one tenant after the other."""
    by_account: dict[str, dict[Any, deque[Any]]] = {}
    for pk, tenant, account in candidates:
        by_account.setdefault(account, {}).setdefault(tenant, deque()).append(pk)
    chosen: list[Any] = []
    for account, tenants in by_account.items():
        left = budget(account)
        queues = deque(tenants.values())
        while left > 0 and queues:
            rows = queues.popleft()
            chosen.append(rows.popleft())
            left -= 1
            if rows:
                queues.append(rows)
    return chosen


@dataclass(eq=False)
class Work:
    """One claimed row being worked: its job, and where it stands."""

    kind: str  # payment, payout, refund, callback
    row: Any
    job: Job[Any]
    action: str
    lease_until: datetime | None
    claimed_at: float = field(default_factory=time.monotonic)
    call: MtnCall | None = None

    @property
    def object_id(self) -> Any:
        if isinstance(self.row, MoneyTransfer):
            return self.row.pk
        return getattr(self.row, "object_id", None)


class Dispatcher:
    """Runs jobs: their database parts in the calling thread, their MTN calls on a pool,
    each within its account's limits; counts what was done."""

    def __init__(self, threads: int, wake: threading.Event) -> None:
        self.threads = max(threads, 1)
        self.wake = wake
        self.pool: ThreadPoolExecutor | None = None
        self.done: queue.SimpleQueue[tuple[Work, Any]] = queue.SimpleQueue()
        # Per account: per tenant, the calls waiting for a permit (round-robin between them).
        self.waiting: dict[str, dict[Any, deque[Work]]] = {}
        self.load: Counter[str] = Counter()  # per account: waiting + in flight
        self.in_flight = 0
        self.counts: Counter[str] = Counter()
        self._limits: dict[str, tuple[float, AccountLimits]] = {}

    # --- what may be claimed -------------------------------------------------------------

    def limits_of(self, account_name: str) -> AccountLimits:
        """The account's limits, read at most once a second (the row may change them)."""
        now = time.monotonic()
        cached = self._limits.get(account_name)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            limits = account_limits(mtn_account_get(name=account_name))
        except MtnAccountNotFound:
            # Its jobs find the account missing and reschedule themselves without a call.
            limits = AccountLimits(max_in_flight=1, rate_per_second=1.0)
        self._limits[account_name] = (now + 1.0, limits)
        return limits

    def budget(self, account_name: str) -> int:
        limits = self.limits_of(account_name)
        room = limits.max_in_flight + math.ceil(limits.rate_per_second * BUFFER_SECONDS)
        return max(room - self.load[account_name], 0)

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or any(self.load.values())

    # --- running jobs --------------------------------------------------------------------

    def start(self, work: Work) -> None:
        self._advance(work, None, first=True)

    def _advance(self, work: Work, outcome: Any, *, first: bool = False) -> None:
        try:
            with log_context(payment_id=work.object_id):
                step = job_start(work.job) if first else job_send(work.job, outcome)
        except Exception as exc:
            if is_database_unavailable(exc):
                raise
            # One bad row must not stop the others; its lease runs out and it is retried.
            logger.exception("worker: %s %s failed", work.kind, work.row.pk)
            self.counts[f"{work.kind}.error"] += 1
            return
        if isinstance(step, Done):
            action = work.action
            if work.kind == "callback":
                action = f"confirmed_{step.value.outcome}"
            self.counts[f"{work.kind}.{action}"] += 1
            return
        work.call = step
        account = step.account_name
        self.load[account] += 1
        self.waiting.setdefault(account, {}).setdefault(step.tenant_id, deque()).append(work)

    def pump(self) -> float | None:
        """Send every waiting call that has a permit and a free thread; returns how long
        until a permit may free up (None: nothing waits)."""
        next_try: float | None = None
        for account, tenants in self.waiting.items():
            limits = self.limits_of(account)
            while tenants and self.in_flight < self.threads:
                permit = permit_try_acquire(account, limits)
                if permit is None:
                    hint = permit_wait_hint(account, limits)
                    next_try = hint if next_try is None else min(next_try, hint)
                    break
                tenant = next(iter(tenants))
                calls = tenants.pop(tenant)
                work = calls.popleft()
                if calls:
                    tenants[tenant] = calls  # to the back: the next tenant goes first
                self._send(work, permit)
        for account in [name for name, tenants in self.waiting.items() if not tenants]:
            del self.waiting[account]
        return next_try

    def _send(self, work: Work, permit: Any) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mtn-call")
        self.in_flight += 1
        call = work.call
        assert call is not None  # noqa: S101 - set when it started waiting

        def run() -> None:
            try:
                outcome = call_outcome(call)
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                outcome = exc
            finally:
                permit.release()
            self.done.put((work, outcome))
            self.wake.set()

        self.pool.submit(run)

    def collect(self) -> int:
        """Record the outcome of every call that has finished; returns how many."""
        finished = 0
        while True:
            try:
                work, outcome = self.done.get_nowait()
            except queue.Empty:
                return finished
            finished += 1
            self.in_flight -= 1
            assert work.call is not None  # noqa: S101
            self.load[work.call.account_name] -= 1
            work.call = None
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, Exception) and not _is_mtn_error(outcome):
                logger.error(
                    "worker: %s %s: the MTN call failed unexpectedly",
                    work.kind,
                    work.row.pk,
                    exc_info=outcome,
                )
                self.counts[f"{work.kind}.error"] += 1
                work.job.close()
                continue
            self._advance(work, outcome)

    def give_back_stale(self) -> None:
        """Give back rows that waited too long for a permit, before their lease ends."""
        limit = time.monotonic() - GIVE_BACK_AFTER.total_seconds()
        for account, tenants in self.waiting.items():
            for tenant, calls in list(tenants.items()):
                while calls and calls[0].claimed_at < limit:
                    self._give_back(calls.popleft())
                    self.load[account] -= 1
                if not calls:
                    del tenants[tenant]

    def give_back_all(self) -> None:
        """On stopping: every row still waiting for a permit is due again at once."""
        for account, tenants in self.waiting.items():
            for calls in tenants.values():
                for work in calls:
                    self._give_back(work)
                    self.load[account] -= 1
        self.waiting.clear()

    @staticmethod
    def _give_back(work: Work) -> None:
        work.job.close()
        model = type(work.row)
        # Only while our lease holds: a row another worker took since is left alone.
        model._default_manager.filter(pk=work.row.pk, next_attempt_at=work.lease_until).update(
            next_attempt_at=timezone.now()
        )

    def wait_for_results(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def _is_mtn_error(exc: BaseException) -> bool:
    from mtn.errors import MtnError

    return isinstance(exc, MtnError)


def _transfer_work(kind: str, transfer: MoneyTransfer, lease_until: Any) -> Work:
    if transfer.submission == Submission.QUEUED:
        # One attempt: the dispatcher's schedule is the retry policy here.
        return Work(
            kind, transfer, transfer_submit_job(transfer=transfer), "submitted", lease_until
        )
    if transfer.submission == Submission.CHECKING:
        return Work(kind, transfer, transfer_check_job(transfer=transfer), "checked", lease_until)
    return Work(kind, transfer, transfer_poll_job(transfer=transfer), "polled", lease_until)


@dataclass
class Worker:
    stop_event: threading.Event = field(default_factory=threading.Event)
    last_purge_at: Any = None
    last_reconcile_check_at: Any = None
    wake: threading.Event = field(default_factory=threading.Event)
    # Set on NOTIFY too: a final state writes a delivery (the outbox) and wakes the worker.
    deliveries_wake: threading.Event = field(default_factory=threading.Event)
    # Only these kinds of work (payment, payout, refund, callback, webhook); None: all.
    only: tuple[str, ...] | None = None
    # Set by the LISTEN thread on every NOTIFY: something was committed due now.
    notified: threading.Event = field(default_factory=threading.Event)
    _dispatcher: Dispatcher | None = None
    # Running forever: claim on a NOTIFY, every this many seconds, or CLAIM_AGAIN_SECONDS
    # after the last claim while there is work; not on every wake-up by a finished call.
    _poll_seconds: float | None = None
    _last_claim: float = 0.0
    _more_due: bool = True

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(settings.DISPATCH_THREADS, self.wake)
        return self._dispatcher

    # --- one step of the dispatcher ------------------------------------------------------

    def step(self) -> dict[str, int]:
        """Record finished MTN calls, claim what is due and can be sent soon, send what has a
        permit. Does not wait; returns counts of the work finished meanwhile."""
        dispatcher = self.dispatcher
        dispatcher.collect()
        dispatcher.give_back_stale()
        if not self.stop_event.is_set() and self._claim_due_now():
            self.notified.clear()
            self._last_claim = time.monotonic()
            claimed = self._claim(dispatcher)
            # More may be due behind what the accounts' budgets let in: look again soon.
            self._more_due = claimed > 0 or dispatcher.busy
        dispatcher.pump()
        counts = dict(dispatcher.counts)
        dispatcher.counts.clear()
        return counts

    def _claim_due_now(self) -> bool:
        if self._poll_seconds is None or self.notified.is_set():
            return True
        wait = CLAIM_AGAIN_SECONDS if self._more_due else self._poll_seconds
        return time.monotonic() - self._last_claim >= wait

    def _claim(self, dispatcher: Dispatcher) -> int:
        """Claim and start what is due; returns how many rows were claimed."""
        now = timezone.now()
        claimed = 0
        for kind, model in TRANSFER_KINDS:
            if self.only is not None and kind not in self.only:
                continue
            for transfer in claim_transfers(model, now=now, budget=dispatcher.budget):
                dispatcher.start(_transfer_work(kind, transfer, now + LEASE))
                claimed += 1
        if self.only is not None and "callback" not in self.only:
            return claimed
        for callback in claim_due(MtnCallback, now=now, limit=CANDIDATES):
            dispatcher.start(
                Work("callback", callback, callback_confirm_job(callback=callback), "", now + LEASE)
            )
            claimed += 1
        return claimed

    # --- a whole round (tests, --once) ---------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Work every kind of due row once, waiting for its MTN calls; returns counts."""
        if self.stop_event.is_set():
            return {}
        dispatcher = self.dispatcher
        totals: Counter[str] = Counter(self.step())
        try:
            while dispatcher.busy:
                hint = dispatcher.pump()
                dispatcher.wait_for_results(min(hint or 0.05, 0.05))
                dispatcher.collect()
                totals.update(dispatcher.counts)
                dispatcher.counts.clear()
        finally:
            dispatcher.close()
        if self.only is None or "webhook" in self.only:
            totals.update(self.deliver_and_purge())
        return dict(totals)

    def deliver_and_purge(self) -> dict[str, int]:
        """Merchant webhook deliveries that are due, and the purge of expired keys."""
        counts: Counter[str] = Counter()
        now = timezone.now()
        for delivery in claim_due(MerchantDelivery, now=now):
            if self.stop_event.is_set():
                break
            try:
                with log_context(payment_id=delivery.object_id):
                    state = delivery_attempt(delivery=delivery).state
                counts[f"webhook.delivered_{state}"] += 1
            except Exception as exc:
                if is_database_unavailable(exc):
                    raise
                logger.exception("worker: webhook %s failed", delivery.pk)
                counts["webhook.error"] += 1
        if self.last_purge_at is None or now - self.last_purge_at >= PURGE_EVERY:
            purged = idempotency_keys_purge(now=now)
            self.last_purge_at = now
            if purged:
                counts["idempotency_keys.purged"] = purged
        return dict(counts)

    def _reconcile_if_due(self, now: Any) -> None:
        """The daily ``reconcile`` of the previous UTC day at ``RECONCILE_HOUR``, once over all
        workers (``reconcile_daily`` decides); looked at every few minutes. Only the
        long-running worker does it, on a thread of its own (its MTN calls are paced and may
        take minutes; the dispatcher and the deliveries go on meanwhile): ``--once`` is for
        work due now."""
        if (
            self.last_reconcile_check_at
            and now - self.last_reconcile_check_at < RECONCILE_CHECK_EVERY
        ):
            return
        self.last_reconcile_check_at = now
        reconcile_daily(now=now)

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

    # --- forever -------------------------------------------------------------------------

    def run_forever(self, idle_sleep: float | None = None) -> None:
        """The dispatcher on this thread, deliveries on another, until stopped."""
        logger.info("worker started")
        poll = settings.DISPATCH_POLL_SECONDS if idle_sleep is None else idle_sleep
        self._poll_seconds = poll
        helpers = [
            threading.Thread(target=self._deliveries_forever, args=(poll,), daemon=True),
            threading.Thread(target=self._reconcile_forever, daemon=True),
        ]
        if connection.vendor == "postgresql":
            helpers.append(threading.Thread(target=self._listen_forever, daemon=True))
        for helper in helpers:
            helper.start()
        try:
            self._dispatch_forever(poll)
        finally:
            self.stop_event.set()
            self.wake.set()
            self.deliveries_wake.set()
            for helper in helpers:
                helper.join(timeout=15)
        logger.info("worker stopped")

    def _dispatch_forever(self, poll: float) -> None:
        outage_wait = 0.0  # > 0 while the database cannot be reached
        while True:
            stopping = self.stop_event.is_set()
            if stopping and self._dispatcher is not None:
                # Let the calls in flight finish and be recorded; give back what waits.
                self._dispatcher.give_back_all()
                if not self._dispatcher.busy:
                    self._dispatcher.close()
                    return
            elif stopping:
                return
            close_old_connections()
            try:
                counts = self.step()
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
            hint = self.dispatcher.pump() if self._dispatcher is not None else None
            self.dispatcher.wait_for_results(min(poll, hint) if hint else poll)

    def _deliveries_forever(self, poll: float) -> None:
        outage_wait = 0.0
        while not self.stop_event.is_set():
            close_old_connections()
            try:
                counts = self.deliver_and_purge()
            except Exception as exc:
                if is_database_unavailable(exc):
                    outage_wait = min(outage_wait * 2, OUTAGE_MAX_WAIT) or OUTAGE_FIRST_WAIT
                    connections["default"].close_if_unusable_or_obsolete()
                    self.deliveries_wake.wait(outage_wait)
                    continue
                logger.exception("worker: deliveries failed; retrying shortly")
                counts = {}
            outage_wait = 0.0
            if counts:
                logger.info("worker: %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            else:
                self.deliveries_wake.wait(poll)
                self.deliveries_wake.clear()
        connections.close_all()

    def _reconcile_forever(self) -> None:
        """The daily reconciliation's own thread: looks every few minutes whether it is due."""
        while not self.stop_event.is_set():
            close_old_connections()
            try:
                self._reconcile_if_due(timezone.now())
            except Exception as exc:
                if is_database_unavailable(exc):
                    # The dispatcher reports the outage; this is looked at again next time.
                    connections["default"].close_if_unusable_or_obsolete()
                    self.last_reconcile_check_at = None
                    self.stop_event.wait(OUTAGE_MAX_WAIT)
                    continue
                logger.exception("worker: the daily reconciliation failed; trying again later")
            self.stop_event.wait(RECONCILE_CHECK_EVERY.total_seconds())
        connections.close_all()

    def _listen_forever(self) -> None:
        """Wake the dispatcher on every ``NOTIFY`` (a dedicated autocommit connection)."""
        import psycopg

        while not self.stop_event.is_set():
            try:
                with psycopg.connect(autocommit=True, **_listen_params()) as listener:
                    listener.execute(f"LISTEN {DISPATCH_CHANNEL}")
                    self.notified.set()  # what was committed before LISTEN: claim it now
                    self.wake.set()
                    while not self.stop_event.is_set():
                        for _ in listener.notifies(timeout=1.0, stop_after=1):
                            self.notified.set()
                            self.wake.set()
                            self.deliveries_wake.set()
            except Exception as exc:  # noqa: BLE001 - the dispatcher polls meanwhile
                logger.warning("worker: LISTEN failed (%s); polling until it is back", exc)
                self.stop_event.wait(OUTAGE_MAX_WAIT / 2)

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
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        return wait

    def install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            logger.info("worker: signal %s received, finishing the calls in flight", signum)
            self.stop_event.set()
            self.wake.set()
            self.deliveries_wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def _listen_params() -> dict[str, Any]:
    """Connection parameters of the default database, for the LISTEN connection."""
    settings_dict = connections["default"].settings_dict
    params = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
    }
    return {key: value for key, value in params.items() if value}
