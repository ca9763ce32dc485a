"""A chaos run: many merchants' creates at once, faults, settling, and what must hold after.

The clients behave like a careful merchant: one ``Idempotency-Key`` per order, and the same
key and body again after a connection error, a 409 (the first request still runs) or a
429, until the gateway answers 201.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from standardwebhooks import Webhook

from gateway.money import currency_decimals
from ledger.fees import collection_fee
from tests.chaos.stack import ROOT, ChaosStack

SANDBOX_NUMBERS = (
    "46733123450",  # FAILED, INTERNAL_PROCESSING_ERROR
    "46733123451",  # FAILED, APPROVAL_REJECTED
    "46733123452",  # FAILED, EXPIRED
    "46733123454",  # PENDING, then SUCCESSFUL after --delay-seconds
)
FINAL = ("SUCCESSFUL", "FAILED")
EVENT_NAMES = {"SUCCESSFUL": "succeeded", "FAILED": "failed"}


@dataclass(frozen=True)
class Order:
    index: int
    kind: str  # "payment", "payout" or "refund"
    party: str
    amount: str  # a refund's may be "": all that is left of its payment
    key: str
    payment_id: str = ""  # refunds only: the payment refunded
    currency: str = "EUR"  # a refund's is its payment's

    @property
    def url_path(self) -> str:
        if self.kind == "refund":
            return f"/api/v1/payments/{self.payment_id}/refunds"
        return "/api/v1/payments" if self.kind == "payment" else "/api/v1/payouts"

    def body(self) -> dict[str, Any]:
        if self.kind == "refund":
            reason = {"reason": f"Chaos refund {self.index}"}
            return {"amount": self.amount, **reason} if self.amount else reason
        return {
            "amount": self.amount,
            "currency": self.currency,
            "payer" if self.kind == "payment" else "payee": self.party,
            "reference": f"order-{self.index}",
            "description": f"Chaos order {self.index}",
            "metadata": {"order": self.index},
        }


def make_orders(count: int, seed: int, run: str, ugx_share: float = 0.0) -> list[Order]:
    """``count`` payments and payouts in EUR; with ``ugx_share``, about that share of them in
    UGX instead (whole shillings: UGX has no minor unit), which the gateway routes to the
    platform's Uganda account."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    # A second generator, so that the EUR orders of a seed stay what they were.
    markets = random.Random(seed + 7)  # noqa: S311 - test data, not security
    orders = []
    for index in range(count):
        kind = "payment" if rng.random() < 0.65 else "payout"
        party = (
            rng.choice(SANDBOX_NUMBERS)
            if rng.random() < 0.3
            else f"25677{rng.randrange(10**6, 10**7)}"
        )
        amount = f"{rng.randrange(1, 5000)}.{rng.randrange(100):02d}"
        currency = "EUR"
        if markets.random() < ugx_share:
            currency, amount = "UGX", str(markets.randrange(500, 200_000))
        orders.append(Order(index, kind, party, amount, f"chaos-{run}-{index}", currency=currency))
    return orders


def make_refunds(
    state: Snapshot, orders: list[Order], outcomes: list[Outcome], *, every: int, run: str
) -> list[Order]:
    """Refunds of every ``every``-th SUCCESSFUL payment: alternately all of it (no amount)
    and a part (a third, rounded down to the currency's minor unit), so both kinds meet the
    faults."""
    successful = {t["id"] for t in state.transfers if t["status"] == "SUCCESSFUL"}
    paid = [
        outcome
        for outcome in outcomes
        if outcome.order.kind == "payment" and outcome.transfer_id in successful
    ]
    refunds = []
    for number, outcome in enumerate(paid[::every]):
        decimals = currency_decimals(outcome.order.currency)
        minor = int(Decimal(outcome.order.amount) * 10**decimals) // 3
        part = str(Decimal(minor).scaleb(-decimals))
        amount = "" if number % 2 == 0 or minor == 0 else part
        index = len(orders) + number
        refunds.append(
            Order(
                index,
                "refund",
                outcome.order.party,
                amount,
                f"chaos-{run}-refund-{number}",
                payment_id=outcome.transfer_id or "",
                currency=outcome.order.currency,
            )
        )
    return refunds


@dataclass
class Outcome:
    order: Order
    transfer_id: str | None = None
    statuses: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    problems: list[str] = field(default_factory=list)
    replayed: bool = False
    unavailable: int = 0  # 503 service_unavailable answers (the database was down)


def _is_service_unavailable(response: requests.Response) -> bool:
    """A 503 as the contract has it: the JSON envelope and a Retry-After in seconds."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code == "service_unavailable" and response.headers.get("Retry-After", "").isdigit()


class Merchants:
    """``concurrency`` client threads creating ``orders``, each retried until it gets a 201."""

    def __init__(self, stack: ChaosStack, orders: list[Order], concurrency: int) -> None:
        self.stack = stack
        self.orders = orders
        self.concurrency = concurrency
        self.done = 0
        self.lock = threading.Lock()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(
                {"X-API-Key": self.stack.api_key, "X-Tenant-ID": self.stack.tenant}
            )
        return session

    def _post(self, order: Order) -> requests.Response:
        return self._session().post(
            self.stack.base_url + order.url_path,
            data=json.dumps(order.body()),
            headers={"Idempotency-Key": order.key, "Content-Type": "application/json"},
            timeout=30,
        )

    def create(self, order: Order, deadline: float) -> Outcome:
        outcome = Outcome(order)
        pause = 0.1
        while time.monotonic() < deadline:
            try:
                response = self._post(order)
            except requests.RequestException:
                outcome.connection_errors += 1
                # The server may be down: drop pooled connections, wait a little, same key.
                self._session().close()
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            outcome.statuses[response.status_code] += 1
            if response.status_code == 201:
                outcome.transfer_id = response.json()["id"]
                break
            if response.status_code in (409, 429):
                time.sleep(min(float(response.headers.get("Retry-After") or 1), 2.0))
                continue
            if response.status_code == 503 and _is_service_unavailable(response):
                # The database is down: retry after Retry-After (capped), same key and body.
                outcome.unavailable += 1
                time.sleep(min(float(response.headers["Retry-After"]), 2.0))
                continue
            # Anything else is a bug: client input here is always valid. Keep retrying with
            # the same key (as a merchant would), so the run still settles, but report it.
            outcome.problems.append(f"HTTP {response.status_code}: {response.text[:300]}")
            time.sleep(0.5)
        else:
            outcome.problems.append("no 201 before the deadline")
        if outcome.transfer_id and order.index % 10 == 0:
            outcome.replayed = True
            self._check_replay(order, outcome)
        with self.lock:
            self.done += 1
        return outcome

    def _check_replay(self, order: Order, outcome: Outcome) -> None:
        for _ in range(20):
            try:
                again = self._post(order)
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if again.status_code == 503 and _is_service_unavailable(again):
                outcome.unavailable += 1
                time.sleep(min(float(again.headers["Retry-After"]), 2.0))
                continue
            if (
                again.status_code != 201
                or again.json().get("id") != outcome.transfer_id
                or again.headers.get("Idempotent-Replayed") != "true"
            ):
                outcome.problems.append(
                    f"replay: HTTP {again.status_code} {again.headers.get('Idempotent-Replayed')} "
                    f"{again.text[:200]}"
                )
            return
        outcome.problems.append("replay: no answer")

    def run(self, seconds: float = 150.0) -> list[Outcome]:
        deadline = time.monotonic() + seconds
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="merchant") as pool:
            return list(pool.map(lambda order: self.create(order, deadline), self.orders))


class Controller(threading.Thread):
    """Runs ``actions`` (progress threshold → callable) as the merchants' progress passes them."""

    def __init__(self, merchants: Merchants, actions: list[tuple[int, Callable[[], Any]]]) -> None:
        super().__init__(daemon=True, name="chaos-controller")
        self.merchants = merchants
        self.actions = sorted(actions, key=lambda item: item[0])
        self.log: list[str] = []
        self.errors: list[BaseException] = []
        self.finished = threading.Event()
        # The longest action: for one that takes a process or service down, how long it was
        # down (a row that fell due meanwhile could not be worked before it came back).
        self.longest = 0.0

    def run(self) -> None:
        try:
            for threshold, action in self.actions:
                while self.merchants.done < threshold and not self.finished.is_set():
                    time.sleep(0.02)
                if self.finished.is_set():
                    self.log.append(f"skipped at {self.merchants.done}: {action.__name__}")
                    continue
                started, done = time.monotonic(), self.merchants.done
                result = action()
                self.longest = max(self.longest, time.monotonic() - started)
                self.log.append(
                    f"at {done} done: {action.__name__} -> {result} "
                    f"({time.monotonic() - started:.1f}s, {self.merchants.done} done by then)"
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)


# --- reading the outcome --------------------------------------------------------------------

TRANSFERS_SQL = """
    SELECT 'payment' AS kind, id::text, status, submission, mtn_reference_id::text AS ref,
           failure_code, next_attempt_at, needs_review, mtn_account, currency
           FROM payments_payment
    UNION ALL
    SELECT 'payout', id::text, status, submission, mtn_reference_id::text,
           failure_code, next_attempt_at, needs_review, mtn_account, currency
           FROM payments_payout
    UNION ALL
    SELECT 'refund', id::text, status, submission, mtn_reference_id::text,
           failure_code, next_attempt_at, needs_review, mtn_account, currency
           FROM payments_refund
"""
DELIVERIES_SQL = """
    SELECT event_id, object_type, object_id::text, event_type, state, attempt_count,
           next_attempt_at FROM webhooks_merchantdelivery
"""


@dataclass
class Snapshot:
    transfers: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    callbacks: Counter
    callbacks_due: int
    acknowledged: set[str]

    @property
    def pending(self) -> int:
        return sum(1 for t in self.transfers if t["status"] not in FINAL)

    @property
    def due(self) -> int:
        return (
            sum(1 for t in self.transfers if t["next_attempt_at"] is not None)
            + sum(1 for d in self.deliveries if d["next_attempt_at"] is not None)
            + self.callbacks_due
        )

    @property
    def undelivered(self) -> int:
        return sum(
            1
            for d in self.deliveries
            if d["state"] != "succeeded" or d["event_id"] not in self.acknowledged
        )

    @property
    def settled(self) -> bool:
        return self.pending == 0 and self.due == 0 and self.undelivered == 0

    def describe(self) -> str:
        return (
            f"{self.pending} pending, {self.due} rows with work due, "
            f"{self.undelivered} deliveries not acknowledged"
        )


def snapshot(stack: ChaosStack) -> Snapshot:
    callbacks = stack.db.rows(
        "SELECT outcome, count(*) AS n, count(next_attempt_at) AS due "
        "FROM webhooks_mtncallback GROUP BY outcome"
    )
    return Snapshot(
        transfers=stack.db.rows(TRANSFERS_SQL),
        deliveries=stack.db.rows(DELIVERIES_SQL),
        callbacks=Counter({row["outcome"]: row["n"] for row in callbacks}),
        callbacks_due=sum(row["due"] for row in callbacks),
        acknowledged=stack.receiver.acknowledged_ids(),
    )


def settle(stack: ChaosStack, seconds: float) -> tuple[Snapshot, float]:
    """Faults off, then wait (bounded) until every payment is final and no work is due."""
    stack.faults_off()
    started = time.monotonic()
    while True:
        state = snapshot(stack)
        if state.settled or time.monotonic() - started > seconds:
            return state, time.monotonic() - started
        time.sleep(0.5)


def overdue_rows(stack: ChaosStack, older_than_seconds: float) -> list[dict[str, Any]]:
    """Rows whose work was due more than ``older_than_seconds`` ago and nobody did it."""
    return stack.db.rows(
        """
        SELECT kind, id, next_attempt_at FROM (
            SELECT 'payment' AS kind, id::text, next_attempt_at FROM payments_payment
            UNION ALL SELECT 'payout', id::text, next_attempt_at FROM payments_payout
            UNION ALL SELECT 'refund', id::text, next_attempt_at FROM payments_refund
            UNION ALL SELECT 'callback', id::text, next_attempt_at FROM webhooks_mtncallback
            UNION ALL SELECT 'delivery', id::text, next_attempt_at FROM webhooks_merchantdelivery
        ) AS work
        WHERE next_attempt_at < now() - make_interval(secs => %s)
        """,
        (float(older_than_seconds),),
    )


LATENESS_SQL = """
    SELECT coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float AS late FROM (
        SELECT next_attempt_at FROM payments_payment
        UNION ALL SELECT next_attempt_at FROM payments_payout
        UNION ALL SELECT next_attempt_at FROM payments_refund
        UNION ALL SELECT next_attempt_at FROM webhooks_mtncallback
        UNION ALL SELECT next_attempt_at FROM webhooks_merchantdelivery
    ) AS work WHERE next_attempt_at < now()
"""


class LatenessMonitor(threading.Thread):
    """Samples, once a second, how long the oldest due row has been waiting for a worker,
    and the machine's one-minute load average (how many processes wanted a core)."""

    def __init__(self, stack: ChaosStack) -> None:
        super().__init__(daemon=True, name="chaos-lateness")
        self.stack = stack
        self.worst = 0.0
        self.worst_at = 0.0  # when it was seen (time.time()), to match with the logs
        self.loads: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.loads.append(os.getloadavg()[0])
            late = self.stack.db.value(LATENESS_SQL)
            if late > self.worst:
                self.worst = late
                self.worst_at = time.time()

    @property
    def peak_load(self) -> float:
        return max(self.loads, default=0.0)


def unprocessed_callbacks(stack: ChaosStack) -> list[dict[str, Any]]:
    """Callbacks stored but not processed yet, and whether a worker will pick them up.

    A callback whose web process is killed before it is processed stays "received" with a
    due time (``webhooks.inbound.UNPROCESSED_GRACE`` after receipt), when a worker takes it.
    One with no due time would be lost for good.
    """
    return stack.db.rows(
        "SELECT id::text, next_attempt_at IS NOT NULL AS due "
        "FROM webhooks_mtncallback WHERE outcome = 'received'"
    )


def check_mtn(
    *,
    transfers: list[dict[str, Any]],
    by_account: dict[str, dict[str, dict[str, Any]]],
    expected_account: dict[str, str],
) -> list[str]:
    """Each object (a row of ``TRANSFERS_SQL``) reached the MTN of its own account
    (``by_account``: each account's simulator's transactions by reference) exactly once and no
    other market's, and agrees with it. ``expected_account``: the account each currency must
    go through (others: ``default``)."""
    problems: list[str] = []
    for account, transactions in by_account.items():
        objects = sum(1 for t in transfers if t["mtn_account"] == account)
        if len(transactions) != objects:
            problems.append(
                f"MTN {account} holds {len(transactions)} transactions for {objects} objects"
            )
        external_ids = Counter(tx["external_id"] for tx in transactions.values())
        for external_id, count in external_ids.items():
            if count > 1:
                problems.append(f"{external_id} reached MTN {account} under {count} references")
    reached = Counter(
        tx["external_id"] for transactions in by_account.values() for tx in transactions.values()
    )
    for transfer in transfers:
        label = f"{transfer['kind']} {transfer['id']}"
        account = transfer["mtn_account"]
        wanted = expected_account.get(transfer["currency"], "default")
        if account != wanted:
            problems.append(
                f"{label} in {transfer['currency']} went through {account!r}, not {wanted!r}"
            )
        if account not in by_account:
            problems.append(f"{label} went through {account!r}, which no simulator here is")
            continue
        if reached[transfer["id"]] > 1:
            problems.append(
                f"{label} reached {reached[transfer['id']]} MTN transactions in all markets"
            )
        tx = by_account[account].get(transfer["ref"])
        if tx is None:
            elsewhere = [name for name, txs in by_account.items() if transfer["ref"] in txs]
            problems.append(
                f"{label} ({transfer['submission']}) never reached MTN {account}"
                + (f"; it reached {elsewhere}" if elsewhere else "")
            )
            continue
        if tx["currency"] != transfer["currency"]:
            problems.append(f"{label}: MTN {account} holds it in {tx['currency']}")
        product = "collection" if transfer["kind"] == "payment" else "disbursement"
        if tx["post_count"] != 1 or tx["product"] != product:
            problems.append(f"{label}: post_count {tx['post_count']}, product {tx['product']}")
        if tx["external_id"] != transfer["id"]:
            problems.append(f"{label}: MTN's externalId is {tx['external_id']}")
        if transfer["status"] != tx["status"]:
            problems.append(f"{label} is {transfer['status']}, MTN says {tx['status']}")
        if transfer["status"] == "FAILED" and transfer["failure_code"] != tx["reason"]:
            problems.append(
                f"{label} failed with {transfer['failure_code']!r}, MTN: {tx['reason']!r}"
            )
        if transfer["submission"] == "rejected":
            problems.append(f"{label}: MTN holds it, yet its submission is recorded as rejected")
        if transfer["needs_review"]:
            problems.append(f"{label} was flagged for review")
    return problems


def check_run(stack: ChaosStack, outcomes: list[Outcome], state: Snapshot) -> list[str]:
    """Everything that must hold after a settled chaos run; returns the violations."""
    problems: list[str] = []

    def fail(message: str) -> None:
        if len(problems) < 60:
            problems.append(message)

    # The merchants: every order got exactly one object, nothing answered 5xx.
    for outcome in outcomes:
        for problem in outcome.problems:
            fail(f"order {outcome.order.index} ({outcome.order.kind}): {problem}")
    ids = [o.transfer_id for o in outcomes if o.transfer_id]
    if len(set(ids)) != len(outcomes):
        fail(f"{len(outcomes)} orders got {len(set(ids))} distinct objects")
    by_id = {t["id"]: t for t in state.transfers}
    if set(by_id) != set(ids):
        fail(
            f"the database holds {len(by_id)} objects, the merchants got {len(set(ids))}; "
            f"unknown to merchants: {sorted(set(by_id) - set(ids))[:5]}"
        )
    for outcome in outcomes:
        found = by_id.get(outcome.transfer_id or "")
        if found is not None and found["kind"] != outcome.order.kind:
            fail(f"order {outcome.order.index} is a {found['kind']}")
        if found is not None and found["currency"] != outcome.order.currency:
            fail(f"order {outcome.order.index} is in {found['currency']}")

    # MTN: each object reached its own account's MTN once, under its one reference, never
    # another market's, and agrees with that MTN.
    by_account = stack.sim_transactions_by_account()
    for problem in check_mtn(
        transfers=state.transfers,
        by_account=by_account,
        expected_account={"EUR": "default", "UGX": "uganda"} if stack.two_markets else {},
    ):
        fail(problem)
    sim = {ref: tx for transactions in by_account.values() for ref, tx in transactions.items()}

    # Merchant webhooks: one event per final state, delivered, signed, acknowledged.
    deliveries = Counter((d["object_type"], d["object_id"]) for d in state.deliveries)
    for transfer in state.transfers:
        count = deliveries[(transfer["kind"], transfer["id"])]
        if count != 1:
            fail(f"{transfer['kind']} {transfer['id']} has {count} merchant deliveries")
    received = stack.receiver.received
    received_ids = {r.event_id for r in received}
    wh = Webhook(stack.webhook_secret)
    for delivery in state.deliveries:
        transfer = by_id.get(delivery["object_id"])
        expected_type = (
            f"{transfer['kind']}.{EVENT_NAMES.get(transfer['status'], '?')}" if transfer else "?"
        )
        if delivery["event_type"] != expected_type:
            fail(
                f"delivery {delivery['event_id']} is {delivery['event_type']}, not {expected_type}"
            )
        if delivery["state"] != "succeeded":
            fail(f"delivery {delivery['event_id']}: {delivery['state']}")
        if delivery["event_id"] not in received_ids:
            fail(f"the merchant never received {delivery['event_id']}")
        if (
            stack.receiver.fails_first(delivery["event_id"])
            and delivery["attempt_count"] < 2
            and not _refused_while_database_cut(stack, delivery["event_id"])
        ):
            fail(f"{delivery['event_id']} was refused once, yet recorded as one attempt")
    known = {d["event_id"]: d for d in state.deliveries}
    for item in received:
        try:
            payload = wh.verify(item.body, item.headers)
        except Exception as exc:  # noqa: BLE001 - any verification error is a finding
            fail(f"event {item.event_id} attempt {item.attempt} does not verify: {exc!r}")
            continue
        delivery = known.get(item.event_id)
        if delivery is None or payload.get("id") != item.event_id:
            fail(f"the merchant received an unknown event {item.event_id}")
            continue
        data = payload.get("data") or {}
        if data.get("id") != delivery["object_id"] or data.get("status") not in FINAL:
            fail(f"event {item.event_id} carries {data.get('id')} {data.get('status')}")

    # Nothing left behind.
    for outcome_name in ("deferred", "mismatch"):
        if state.callbacks.get(outcome_name):
            fail(f"{state.callbacks[outcome_name]} MTN callbacks ended {outcome_name!r}")
    for callback in unprocessed_callbacks(stack):
        if not callback["due"]:
            fail(f"MTN callback {callback['id']} was stored and will never be processed")
    for transfer in state.transfers:
        if transfer["status"] in FINAL and transfer["submission"] == "queued":
            fail(f"{transfer['kind']} {transfer['id']} is final yet still queued for MTN")
    for row in overdue_rows(stack, older_than_seconds=5):
        fail(f"{row['kind']} {row['id']} was due at {row['next_attempt_at']} and is stuck")
    for process in stack.processes():
        text = process.log.read_text(errors="replace")
        if not process.name.startswith("simulator") and (
            "Traceback" in text or "unhandled error" in text
        ):
            fail(f"{process.name} logged an error:\n{_first_traceback(text)}")

    # The money: the ledger proves itself, and agrees with MTN's record.
    for problem in check_money(stack, sim):
        fail(problem)
    return problems


BALANCES_SQL = """
    SELECT a.currency, a.kind, a.balance FROM ledger_account a
    JOIN tenants_tenant t ON t.id = a.tenant_id WHERE t.slug = %s
"""
# The platform's fees are striped over several rows per currency: their sum is the balance.
FEES_SQL = (
    "SELECT currency, SUM(balance) AS balance FROM ledger_account "
    "WHERE tenant_id IS NULL AND kind = 'fees' GROUP BY currency"
)


@dataclass
class Money:
    """Per currency: what the tenant must hold, by MTN's record of what happened."""

    total: Counter = field(default_factory=Counter)  # available + reserved
    reserved: Counter = field(default_factory=Counter)  # payouts and refunds still in flight
    fees: Counter = field(default_factory=Counter)


def expected_money(stack: ChaosStack, sim: dict[str, dict[str, Any]]) -> Money:
    """The funding, plus every SUCCESSFUL collection less its fee, less every SUCCESSFUL
    transfer and refund; a transfer or refund MTN has not finished is held in reserve.

    Read from the simulator's own record (amount, currency and status as MTN holds them),
    not from the gateway's rows, so a payment the gateway settled wrongly shows up here.
    """
    money = Money()
    for currency, amount in stack.funding.items():
        money.total[currency] += amount
    for tx in sim.values():
        currency, amount = tx["currency"], Decimal(tx["amount"])
        if tx["product"] == "collection":
            if tx["status"] == "SUCCESSFUL":
                fee = collection_fee(
                    amount=amount,
                    percent=stack.collection_fee_percent,
                    decimals=currency_decimals(currency),
                )
                money.total[currency] += amount - fee
                money.fees[currency] += fee
        elif tx["status"] == "SUCCESSFUL":  # a transfer (payout) or a refund: money out
            money.total[currency] -= amount
        elif tx["status"] not in FINAL:
            money.reserved[currency] += amount
    return money


def check_money(stack: ChaosStack, sim: dict[str, dict[str, Any]]) -> list[str]:
    """The ledger is consistent and holds exactly what MTN says the tenant has."""
    problems: list[str] = []
    ledger = stack.ledger_check()
    if not ledger.get("ok"):
        problems.extend(f"ledger_check: {p}" for p in ledger.get("problems", [])[:20])
    if not ledger.get("transactions"):
        problems.append(f"ledger_check saw no ledger transactions: {ledger}")
    expected = expected_money(stack, sim)
    held: dict[str, Counter] = {}
    for row in stack.db.rows(BALANCES_SQL, (stack.tenant,)):
        held.setdefault(row["currency"], Counter())[row["kind"]] += row["balance"]
    for currency in sorted(set(held) | set(expected.total)):
        kinds = held.get(currency, Counter())
        total = kinds["available"] + kinds["reserved"]
        if total != expected.total[currency]:
            problems.append(
                f"{currency}: the tenant holds {total} (available {kinds['available']}, "
                f"reserved {kinds['reserved']}); by MTN's record it should be "
                f"{expected.total[currency]} (off by {total - expected.total[currency]})"
            )
        if kinds["reserved"] != expected.reserved[currency]:
            problems.append(
                f"{currency}: {kinds['reserved']} reserved, but MTN has "
                f"{expected.reserved[currency]} in payouts and refunds not finished"
            )
    fees = {row["currency"]: row["balance"] for row in stack.db.rows(FEES_SQL)}
    for currency in sorted(set(fees) | set(expected.fees)):
        if fees.get(currency, Decimal(0)) != expected.fees[currency]:
            problems.append(
                f"{currency}: the platform's fees are {fees.get(currency)}, by MTN's record "
                f"{expected.fees[currency]}"
            )
    return problems


# A worker records an attempt after the merchant answered: with PostgreSQL cut meanwhile the
# record is lost with its transaction and the lease brings the delivery back as attempt one.
# How long after the cut a worker may still be waiting to record that answer.
CUT_RECORDING_SLACK_SECONDS = 5.0


def _refused_while_database_cut(stack: ChaosStack, event_id: str) -> bool:
    """Whether the merchant refused ``event_id`` while the database was (about to be) cut,
    so that the refused attempt could not be recorded."""
    refused = [r.at for r in stack.receiver.received if r.event_id == event_id and r.status != 200]
    return any(
        start - CUT_RECORDING_SLACK_SECONDS <= at <= end
        for at in refused
        for start, end in stack.database_cuts
    )


def _first_traceback(text: str) -> str:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if "Traceback" in line or "unhandled error" in line:
            return "\n".join(lines[max(0, index - 3) : index + 30])
    return ""


def summary(
    stack: ChaosStack, outcomes: list[Outcome], state: Snapshot, timings: dict[str, float]
) -> str:
    statuses: Counter = Counter()
    for outcome in outcomes:
        statuses.update(outcome.statuses)
    sim = stack.sim_transactions()
    sim_callbacks = Counter(c["outcome"] for c in stack.sim_callbacks())
    final = Counter(f"{t['kind']}:{t['status']}" for t in state.transfers)
    markets = Counter(f"{t['mtn_account']}:{t['currency']}" for t in state.transfers)
    attempts = Counter(d["attempt_count"] for d in state.deliveries)
    return (
        f"chaos: {len(outcomes)} orders; "
        + ", ".join(
            f"{name} {value:.1f}{'' if name.endswith('average') else 's'}"
            for name, value in timings.items()
        )
        + f"\n  final: {dict(sorted(final.items()))}; by account: {dict(sorted(markets.items()))}"
        + f"\n  merchant answers: {dict(sorted(statuses.items()))}, connection errors "
        f"{sum(o.connection_errors for o in outcomes)}, 503s "
        f"{sum(o.unavailable for o in outcomes)}, replays checked "
        f"{sum(o.replayed for o in outcomes)}"
        + f"\n  MTN: {len(sim)} transactions, {sum(t['conflict_count'] for t in sim.values())} "
        f"409 conflicts, {sum(t['status_reads'] for t in sim.values())} status reads; "
        f"callbacks {dict(sim_callbacks)}"
        + f"\n  gateway callbacks: {dict(state.callbacks)}"
        + f"\n  merchant deliveries by attempts: {dict(sorted(attempts.items()))}, "
        f"received {len(stack.receiver.received)} POSTs"
        + f"\n  callbacks stored by a killed process, due for a worker: "
        f"{len(unprocessed_callbacks(stack))}"
    )


# --- late contradictions: MTN changes its mind after the gateway holds an object final -------

FINAL_OBJECTS_SQL = """
    SELECT 'payment' AS kind, id, mtn_reference_id, mtn_account, status FROM payments_payment
     WHERE status IN ('SUCCESSFUL', 'FAILED')
    UNION ALL
    SELECT 'payout', id, mtn_reference_id, mtn_account, status FROM payments_payout
     WHERE status IN ('SUCCESSFUL', 'FAILED')
    UNION ALL
    SELECT 'refund', id, mtn_reference_id, mtn_account, status FROM payments_refund
     WHERE status IN ('SUCCESSFUL', 'FAILED')
    ORDER BY 2
"""
FLAGGED_SQL = """
    SELECT id, status FROM payments_payment WHERE needs_review
    UNION ALL SELECT id, status FROM payments_payout WHERE needs_review
    UNION ALL SELECT id, status FROM payments_refund WHERE needs_review
"""
NEEDS_REVIEW_EVENTS_SQL = """
    SELECT object_id FROM webhooks_merchantdelivery WHERE event_type LIKE '%%.needs_review'
"""


_KIND_OF: dict[str, str] = {}


def _sorted_rows(rows: list[dict[str, Any]]) -> list[tuple]:
    return sorted(tuple(sorted(row.items())) for row in rows)


def late_contradictions(stack: ChaosStack, *, seed: int, count: int = 12) -> list[str]:
    """After the run has settled and been checked: MTN changes its mind about ``count``
    final objects (another final status, or another amount), ``manage.py reconcile`` asks
    MTN again, and every one of them must be flagged for review, with its status and every
    balance unchanged (nothing applied silently), the merchant told, and nothing else
    flagged. Returns the problems found."""
    stack.faults_off()
    rng = random.Random(seed)  # noqa: S311 - choosing test objects
    sim = stack.sim_transactions()
    candidates = [
        row
        for row in stack.db.rows(FINAL_OBJECTS_SQL)
        if str(row["mtn_reference_id"]) in sim  # a FAILED one MTN never received has no record
    ]
    chosen = rng.sample(candidates, min(count, len(candidates)))
    urls = stack.sim_urls()
    changed: dict[str, str] = {}
    _KIND_OF.clear()
    for index, row in enumerate(chosen):
        reference = str(row["mtn_reference_id"])
        if index % 4 == 3 and row["status"] == "SUCCESSFUL":
            amount = Decimal(sim[reference]["amount"]) + 1
            body: dict[str, Any] = {"status": "SUCCESSFUL", "amount": str(amount)}
        else:
            flipped = "FAILED" if row["status"] == "SUCCESSFUL" else "SUCCESSFUL"
            body = {"status": flipped}
        response = requests.post(
            f"{urls[row['mtn_account']]}/_simulator/transactions/{reference}", json=body, timeout=30
        )
        response.raise_for_status()
        changed[str(row["id"])] = row["status"]
        _KIND_OF[str(row["id"])] = row["kind"]
    balances = _sorted_rows(stack.db.rows(BALANCES_SQL, (stack.tenant,)))
    fees = _sorted_rows(stack.db.rows(FEES_SQL))

    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "manage.py", "reconcile", "--since", "2000-01-01T00:00:00Z"],
        cwd=ROOT,
        env={**stack.environment(), "RECONCILE_CALLS_PER_SECOND": "200"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    problems: list[str] = []
    if done.returncode != 1:
        problems.append(f"reconcile exited {done.returncode}, not 1:\n{done.stdout}{done.stderr}")
    flagged = {str(row["id"]): row["status"] for row in stack.db.rows(FLAGGED_SQL)}
    for object_id, status in changed.items():
        if object_id not in flagged:
            problems.append(f"MTN contradicted {object_id} ({status}); it was not flagged")
        elif flagged[object_id] != status:
            problems.append(f"{object_id} went {status} -> {flagged[object_id]} silently")
        if f"DISAGREES: {_KIND_OF[object_id]} {object_id}" not in done.stdout:
            problems.append(f"reconcile did not report {object_id}")
    problems.extend(
        f"{object_id} flagged though MTN did not change its mind"
        for object_id in set(flagged) - set(changed)
    )
    if _sorted_rows(stack.db.rows(BALANCES_SQL, (stack.tenant,))) != balances:
        problems.append("a balance changed: a contradiction was applied silently")
    if _sorted_rows(stack.db.rows(FEES_SQL)) != fees:
        problems.append("the platform's fees changed: a contradiction was applied silently")
    told = {str(row["object_id"]) for row in stack.db.rows(NEEDS_REVIEW_EVENTS_SQL)}
    problems.extend(f"no needs_review event for {i}" for i in set(changed) - told)
    ledger = stack.ledger_check()
    if not ledger.get("ok"):
        problems.extend(f"ledger_check: {p}" for p in ledger.get("problems", [])[:20])
    return problems
