#!/usr/bin/env python3
"""A burst of permits for one MTN account from several processes: the rate reached and the
most calls in flight, against the account's limits (``mtn.limits``, through Redis).

    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/mtn_limits.py \\
        [--permits 5000] [--rate 50] [--max-in-flight 32] [--processes 3] [--threads 16] \\
        [--hold 0.2]

Each of ``--processes`` processes runs ``--threads`` threads that, until the burst is used
up, take a permit (sleeping for ``permit_wait_hint`` when refused, as a dispatcher would),
hold it for up to ``--hold`` seconds (a stand-in for MTN's answer time, uniformly drawn), and
release it. Grant times are Redis's own clock. Prints the rate over the burst (first to last
grant), the most permits held at once (counted by the holders themselves, so never more than
Redis allowed), and how many permits were granted per window of one second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")


def worker_process(args: argparse.Namespace, account: str, shared: Any) -> None:
    import django

    django.setup()
    from mtn.limits import AccountLimits, permit_try_acquire, permit_wait_hint

    remaining, holding, peak, lock, results = shared
    limits = AccountLimits(args.max_in_flight, args.rate)
    granted: list[float] = []
    local: list[str] = []

    def take() -> bool:
        with remaining.get_lock():
            if remaining.value <= 0:
                return False
            remaining.value -= 1
            return True

    def work() -> None:
        rng = random.Random()  # noqa: S311 - a benchmark's hold times
        while take():
            while True:
                permit = permit_try_acquire(account, limits)
                if permit is not None:
                    break
                time.sleep(min(max(permit_wait_hint(account, limits), 0.001), 0.05))
            if not permit.shared:
                local.append("a permit was not counted in Redis (is REDIS_URL set?)")
            with lock:
                holding.value += 1
                peak.value = max(peak.value, holding.value)
            granted.append(permit.granted_at)
            time.sleep(rng.uniform(0, args.hold))
            with lock:
                holding.value -= 1
            permit.release()

    threads = [threading.Thread(target=work) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((granted, local[:1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--permits", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--hold", type=float, default=0.2, help="longest hold, seconds")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL: the limits are shared through Redis")

    context = multiprocessing.get_context("spawn")
    shared = (
        context.Value("i", args.permits),
        context.Value("i", 0),
        context.Value("i", 0),
        context.Lock(),
        context.Queue(),
    )
    account = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    processes = [
        context.Process(target=worker_process, args=(args, account, shared))
        for _ in range(args.processes)
    ]
    for process in processes:
        process.start()
    outcomes = [shared[4].get() for _ in processes]
    for process in processes:
        process.join()
    wall = time.monotonic() - started

    problems = [problem for _, found in outcomes for problem in found]
    times = sorted(at for granted, _ in outcomes for at in granted)
    span = times[-1] - times[0]
    rate = (len(times) - 1) / span if span > 0 else float("inf")
    per_second: dict[int, int] = {}
    for at in times:
        second = int(at - times[0])
        per_second[second] = per_second.get(second, 0) + 1
    full = [count for second, count in per_second.items() if second < int(span)]
    print(
        f"{len(times)} permits, {args.processes} processes x {args.threads} threads, "
        f"hold up to {args.hold * 1000:.0f} ms, wall {wall:.1f} s"
    )
    print(
        f"rate: {rate:.2f}/s over {span:.2f} s = {rate / args.rate:.3f} x MTN_RATE_LIMIT "
        f"({args.rate:g}/s)"
    )
    print(
        f"most in flight: {shared[2].value} (MTN_MAX_IN_FLIGHT {args.max_in_flight}); "
        f"per whole second: min {min(full, default=0)}, max {max(full, default=0)}"
    )
    if problems:
        print("PROBLEM:", problems[0])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
