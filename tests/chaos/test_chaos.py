"""Chaos: hundreds of concurrent creates while MTN misbehaves and processes die.

A real stack on loopback (see ``stack.py``): gunicorn with 2 workers and two ``run_worker``
processes on a fresh PostgreSQL database, the MTN simulator answering 0.3 s late (behind
``tests/latency_proxy.py``, as a real MTN does: many calls in flight in each dispatcher) and
injecting faults at random
(5xx on POST and GET, 429, timeouts past the gateway's read timeout, lost responses; lost,
duplicate, late and out-of-order callbacks), and a merchant endpoint that refuses the first
attempt of some webhook events. One run has two markets: a share of its orders is in UGX,
which the gateway sends through the platform's MTN Uganda account (a second simulator), and
every check below is made against the MTN of each object's own account. Then the faults
stop and the stack settles; some of the SUCCESSFUL payments are refunded (in full or in
part) under the same faults, and it settles again. Afterwards every object must agree with
MTN, have reached MTN exactly once, have produced exactly one merchant event that the
merchant received and could verify, and nothing may be stuck. And the money must be right:
``ledger_check`` finds no problem, and the tenant (charged a 1.5 % collection fee) holds
exactly its funding plus every payment MTN says succeeded, less its fee, less every payout
and refund MTN says succeeded; the platform's fee account holds those fees.

Merchant deliveries refused once are retried on the 5-second schedule; the receiver never
refuses a second attempt, so no delivery reaches the 5-minute schedule and nothing is
hurried with SQL: everything here happens on the gateway's own schedule.

Last, MTN changes its mind about a dozen final objects (another final status, or another
amount): ``manage.py reconcile`` must flag every one of them, apply none (no balance moves),
tell the merchant, and flag nothing else.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.chaos.scenario import (
    Controller,
    LatenessMonitor,
    Merchants,
    check_run,
    late_contradictions,
    make_orders,
    make_refunds,
    settle,
    summary,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.e2e]

ORDERS = 300
CONCURRENCY = 16
SETTLE_SECONDS = 120
# One SUCCESSFUL payment in this many is refunded (about 20 refunds a run), after the load.
REFUND_EVERY = 8
# No row may wait longer than this for a worker once it is due (a killed worker's rows are
# leased, hence not due, until its lease of 60 seconds ends). Measured at 7-11 s on a 2-core
# machine busy with this stack alone (one-minute load average about 4.5: gunicorn, two
# workers, the simulator, PostgreSQL and the merchants). When others load the machine too,
# every process gets a smaller share of the cores and the backlog drains as much slower
# (22-24 s seen at load average 9), so the bound grows with the run's peak load above that,
# or above the machine's core count when it has more than 4.5. A run that takes something
# down adds how long it was down (measured), as rows due meanwhile wait for it to return
# (a killed gunicorn whose orphaned worker lingers keeps the web away up to 20 s) ...
MAX_LATENESS_SECONDS = 20
LOAD_OF_THIS_STACK = 4.5
# ... but never to the 60-second lease: a row that waits for a lease it should not (a
# worker's work lost until its lease ends) fails however loaded the machine is.
LATENESS_CEILING_SECONDS = 55


# In the two-market run, about this share of the orders is in UGX, through MTN Uganda.
UGX_SHARE = 0.35
# A second simulator (and its callbacks) on the same two cores: the two-market run measured
# 13.5-21.9 s of worst lateness at peak loads 4.8-5.7, against 6-11 s for one market, so its
# base bound is 10 s higher; still far below the ceiling, so a row stuck on a lease still fails.
TWO_MARKETS_EXTRA_LATENESS_SECONDS = 10


FAULTS = {
    "post_error_rate": 0.08,
    "status_error_rate": 0.08,
    "rate_limit_rate": 0.04,
    "retry_after_seconds": 1,
    "timeout_rate": 0.03,
    "timeout_seconds": 2.0,  # past the gateway's MTN_READ_TIMEOUT of 1 s
    "lost_response_rate": 0.05,
    "lost_callback_rate": 0.15,
    "duplicate_callback_rate": 0.15,
    "out_of_order_rate": 0.15,
    "callback_delay_seconds": 1.0,
}


def lateness_bound(base: float, peak_load: float, extra: float = 0.0) -> float:
    """``base`` scaled by how much more loaded than by this stack alone the machine was, plus
    ``extra`` (how long something was down, measured: lateness counted from when the fault
    ended), capped below the lease."""
    quiet = max(LOAD_OF_THIS_STACK, float(os.cpu_count() or 1))
    return min(base * max(1.0, peak_load / quiet) + extra, LATENESS_CEILING_SECONDS)


def _run(
    stack, *, seed: int, actions=(), extra_lateness: float = 0.0, ugx_share: float = 0.0
) -> list:
    started = time.monotonic()
    orders = make_orders(ORDERS, seed=seed, run=f"s{seed}", ugx_share=ugx_share)
    merchants = Merchants(stack, orders, CONCURRENCY)
    controller = Controller(merchants, list(actions))
    monitor = LatenessMonitor(stack)
    controller.start()
    monitor.start()
    outcomes = merchants.run(seconds=150)
    load_seconds = time.monotonic() - started
    controller.finished.set()
    controller.join(timeout=60)
    state, settle_seconds = settle(stack, SETTLE_SECONDS)
    refund_seconds = 0.0
    if state.settled:
        # Refunds of payments the gateway and MTN agree succeeded, under the same faults
        # again; then everything settles once more and is checked as one run.
        started = time.monotonic()
        stack.set_faults(**stack.faults)
        refunds = make_refunds(state, orders, outcomes, every=REFUND_EVERY, run=f"s{seed}")
        outcomes += Merchants(stack, refunds, CONCURRENCY).run(seconds=60)
        state, more_settling = settle(stack, SETTLE_SECONDS)
        refund_seconds = time.monotonic() - started
        settle_seconds += more_settling
    monitor.stopped.set()
    monitor.join(timeout=10)
    base = MAX_LATENESS_SECONDS + (TWO_MARKETS_EXTRA_LATENESS_SECONDS if ugx_share else 0)
    max_lateness = lateness_bound(base, monitor.peak_load, controller.longest + extra_lateness)
    timings = {
        "load": load_seconds,
        "settle": settle_seconds,
        "refunds (with their settling)": refund_seconds,
        "worst lateness": monitor.worst,
        "lateness bound": max_lateness,
        "longest action": controller.longest,
        "peak load average": monitor.peak_load,
    }
    report = summary(stack, outcomes, state, timings)
    print(report)  # noqa: T201 - the run's figures, shown with -s
    print("\n".join(controller.log))  # noqa: T201
    assert not controller.errors, controller.errors
    assert state.settled, (
        f"not settled after {SETTLE_SECONDS}s of no faults: {state.describe()}\n{report}\n"
        + "\n".join(f"--- {p.name}\n{p.tail(15)}" for p in stack.processes())
    )
    assert any(o.order.kind == "refund" for o in outcomes), "no refund was made"
    problems = check_run(stack, outcomes, state)
    assert not problems, "\n".join(problems) + "\n" + report
    # Then MTN changes its mind about some final objects: every one is flagged, none applied.
    contradictions = late_contradictions(stack, seed=seed)
    assert not contradictions, "\n".join(contradictions)
    assert monitor.worst < max_lateness, (
        f"a due row waited {monitor.worst:.1f}s (seen at {monitor.worst_at:.1f}), more than "
        f"{max_lateness:.1f}s at peak load {monitor.peak_load:.1f}\n{report}\n"
        + "\n".join(f"--- {p.name}\n{p.tail(25)}" for p in stack.processes())
    )
    return outcomes


def test_every_payment_settles_once_and_agrees_with_mtn_of_its_market_under_faults(
    chaos_stack,
):
    # Two markets: the platform's default MTN account (EUR) and its Uganda account (UGX, a
    # simulator of its own with its own credentials), both under the same faults. Each object
    # must agree with, and have reached only, the MTN of its own account; the money adds up
    # per currency against both MTNs' records.
    stack = chaos_stack(seed=101, faults=FAULTS, two_markets=True)

    def lost_responses_arrive_late() -> str:
        # Half way: a lost response now holds the connection past the read timeout first.
        stack.set_faults(lost_response_mode="sleep")
        return "lost_response_mode=sleep"

    outcomes = _run(
        stack,
        seed=101,
        actions=[(ORDERS // 2, lost_responses_arrive_late)],
        ugx_share=UGX_SHARE,
    )

    # The run used both markets, for payments, payouts and refunds alike.
    used = {(o.order.kind, o.order.currency) for o in outcomes if o.transfer_id}
    for kind in ("payment", "payout", "refund"):
        assert {(kind, "EUR"), (kind, "UGX")} <= used, used


def test_killed_web_server_and_workers_lose_and_double_nothing(chaos_stack):
    stack = chaos_stack(seed=202, faults=FAULTS)

    def kill_worker(index: int):
        def kill_a_worker() -> str:
            killed, _ = stack.workers[index].kill()
            time.sleep(0.5)
            stack.workers[index].start()
            return f"SIGKILL run_worker {killed}, restarted"

        return kill_a_worker

    def kill_web(workers_too: bool):
        def kill_the_web_server() -> str:
            killed = stack.kill_web(workers_too=workers_too)
            time.sleep(0.5)
            stack.start_web()
            return f"gunicorn {killed}, restarted on the same port"

        return kill_the_web_server

    _run(
        stack,
        seed=202,
        actions=[
            (ORDERS // 6, kill_worker(0)),
            (ORDERS // 3, kill_web(workers_too=True)),
            (ORDERS // 2, kill_worker(1)),
            # The master alone: its orphaned workers find their parent gone and exit.
            (ORDERS * 2 // 3, kill_web(workers_too=False)),
        ],
    )


# Long enough for every process to meet the outage (requests, workers' rounds, the circuit
# breaker), short enough for CI.
DOWNTIME_SECONDS = 4
# Nothing is worked while the database is away: what falls due meanwhile waits for the outage
# (measured, the controller's longest action), the workers' back-off (at most as long again)
# and then its turn in the backlog that two workers, working their rounds one row after
# another, have to catch up on (the scaled part, and this).
OUTAGE_LATENESS_SECONDS = 20


def test_postgres_cut_and_redis_stopped_mid_load_lose_and_double_nothing(chaos_stack):
    stack = chaos_stack(seed=303, faults=FAULTS, proxied=True)

    def cut_postgres() -> str:
        return stack.cut_database(DOWNTIME_SECONDS)

    def stop_redis() -> str:
        return stack.stop_redis(DOWNTIME_SECONDS)

    outcomes = _run(
        stack,
        seed=303,
        actions=[(ORDERS // 4, cut_postgres), (ORDERS // 2, stop_redis)],
        extra_lateness=OUTAGE_LATENESS_SECONDS,
    )

    # The phases happened: merchants met the outage (and retried through it) ...
    assert sum(outcome.unavailable for outcome in outcomes) > 0
    # ... and gunicorn met the Redis one, rode it out (no 5xx: check_run) and got over it.
    if stack.redis_proxy is not None:
        web_log = stack.web.log.read_text(errors="replace")
        assert "Redis cannot be reached" in web_log
        assert "Redis is reachable again" in web_log
