"""When the worker next looks at a payment: retry and polling delays. Pure."""

from __future__ import annotations

from datetime import timedelta

FIRST_DELAY = timedelta(seconds=5)
EARLY_PHASE = timedelta(minutes=10)
EARLY_CAP = timedelta(seconds=60)
LATE_CAP = timedelta(minutes=5)


def backoff_delay(attempt: int, age: timedelta) -> timedelta:
    """The delay before try number ``attempt + 1``, given how long we have been trying.

    5 s after the first failure, then doubling, at most 60 s apart during the first ten
    minutes and at most 5 minutes apart after that (the contract's worker schedule). No
    jitter: claims use ``SKIP LOCKED`` leases, so workers do not stampede on one row.
    """
    attempt = max(attempt, 1)
    delay = FIRST_DELAY * (2 ** min(attempt - 1, 16))
    return min(delay, _cap(age))


def _cap(age: timedelta) -> timedelta:
    """60 s for ten minutes, then 120 s, 240 s and 5 minutes.

    Stepping up (rather than jumping from 60 s to 5 minutes) keeps the contract's "delays
    that at most double": a delay capped in one step ends, at the earliest, in the next
    step, whose cap is at most twice as large.
    """
    if age < EARLY_PHASE:
        return EARLY_CAP
    cap = EARLY_CAP * 2
    step_ends = EARLY_PHASE + cap
    while cap < LATE_CAP and age >= step_ends:
        cap *= 2
        step_ends += cap
    return min(cap, LATE_CAP)
